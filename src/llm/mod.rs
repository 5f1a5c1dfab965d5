//! Language models behind one trait: `Llm::chat(messages, constraint, params)`. The local backend
//! runs open-weight models on the CPU (`local`); `openai` speaks to any OpenAI-compatible
//! endpoint, `ollama` to Ollama's native API, and `servers` knows where Ollama and LM Studio
//! listen and which model they serve. `hub` finds model files (`stores`: also where Ollama and
//! LM Studio keep theirs; `inventory`: all of them, for `models list`), `template` renders chat
//! templates. Models run behind `runtime` (the own forward pass of `transformer` on `kernels`,
//! or candle's), `files` says where a model's files are, `tokenizer` and `vocab` tokenize.
//! `testmodel` (cargo feature `test-models`, on by default) writes tiny random-weight models so
//! the real loading code is tested without any download; only the CLI and the tests use it.

pub mod arch;
pub mod files;
pub mod hub;
pub mod inventory;
pub mod kernels;
pub mod local;
pub mod ollama;
pub mod openai;
pub mod pick;
pub mod runtime;
pub mod sampling;
pub mod servers;
pub mod stores;
pub mod template;
#[cfg(feature = "test-models")]
pub mod testmodel;
pub mod tokenizer;
pub mod transformer;
pub mod vocab;

use serde::{Deserialize, Serialize};

/// Who speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(text: impl Into<String>) -> Message {
        Message {
            role: Role::System,
            content: text.into(),
        }
    }
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: text.into(),
        }
    }
    pub fn assistant(text: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: text.into(),
        }
    }
}

/// Sampling and stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// 1.0 = off.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// Generation ends when the text ends with one of these (not included in the result).
    pub stop: Vec<String>,
    /// Keep generating past end-of-sequence (for speed measurements of a fixed length).
    #[serde(default)]
    pub ignore_eos: bool,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            max_tokens: 512,
            temperature: 0.7,
            top_p: 0.9,
            seed: 42,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            stop: Vec::new(),
            ignore_eos: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model emitted an end-of-sequence token.
    Eos,
    /// A stop string appeared.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The constraint was satisfied and allows nothing more.
    Constraint,
}

/// The result of one chat turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys/values were reused from the previous turn (not prefilled).
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    pub finish: Finish,
}

impl Completion {
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.completion_tokens as f64 / self.decode_seconds.max(1e-9)
    }
    pub fn prefill_tokens_per_second(&self) -> f64 {
        (self.prompt_tokens - self.cached_tokens) as f64 / self.prefill_seconds.max(1e-9)
    }
}

/// Restricts which token may come next (grammar-constrained decoding plugs in here).
pub trait TokenConstraint {
    /// Set the logits of tokens not allowed next to negative infinity (end-of-turn tokens are
    /// the sampler's business: it allows them exactly when [`is_complete`](Self::is_complete)).
    /// Returns whether any token is still allowed.
    fn restrict(&mut self, logits: &mut [f32]) -> anyhow::Result<bool>;
    /// Tokens certain to come next, which the sampler takes without sampling (fed to the model
    /// in one batch). None by default.
    fn forced(&mut self) -> anyhow::Result<Vec<u32>> {
        Ok(Vec::new())
    }
    /// The token taken, to advance the constraint's state.
    fn consume(&mut self, token: u32) -> anyhow::Result<()>;
    /// Whether the output so far is complete (end-of-turn may be emitted).
    fn is_complete(&mut self) -> bool;
}

/// A language model that answers chats.
pub trait Llm {
    /// What is answering, e.g. `local:qwen2 (model.gguf)`.
    fn name(&self) -> String;
    /// One turn: the whole conversation so far in, the assistant's reply out. `on_text` receives
    /// the reply as it is generated.
    fn chat(
        &mut self,
        messages: &[Message],
        constraint: Option<&mut dyn TokenConstraint>,
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> anyhow::Result<Completion>;
    /// Events since the last call that a user should know of (a remote endpoint's retries and
    /// format downgrades); taken, so each is reported once.
    fn take_notices(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The JSON Schema the next replies must follow, for backends that take it with the request
    /// (an endpoint's `response_format`); local models are constrained by the grammar given to
    /// `chat` instead. `None` keeps the one given at construction.
    fn set_response_schema(&mut self, _schema: Option<&serde_json::Value>) {}
}
