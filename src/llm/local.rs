//! The local backend: generation on top of a model [`Runtime`](super::runtime::Runtime) (lsmtune's
//! own forward pass, or candle's). Loading picks the runtime (by format and
//! `LSMTUNE_LOCAL_RUNTIME`), the tokenizer ([`super::tokenizer::choose`]: the GGUF's own
//! vocabulary, or tokenizer.json) and the chat template (tokenizer_config.json,
//! chat_template.jinja, GGUF metadata, or the family's built-in). A turn renders the template,
//! samples (temperature, top-p, seed, repeat penalty, stop strings, max tokens) under an optional
//! token constraint, streams the text as it is decoded, and keeps the KV cache across turns: a
//! turn whose prompt extends what the cache already holds prefills only the new tokens.
//!
//! A turn stays within the model's context window (its trained context length): a conversation
//! too long for it loses its oldest exchanges after the first turn, as the Ollama backend does,
//! the reply is cut where the window ends, and a prompt that leaves no room for a reply is an
//! error. Message text is tokenized with special tokens off ([`ControlTexts`]): only the chat
//! template's own markers are control tokens.
//!
//! Families (GGUF): qwen2, qwen3, llama (and mistral, which GGUF files also call llama), phi3,
//! gemma3.
//! Safetensors (with config.json): qwen2, llama.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::arch::Arch;
use super::files::{ModelFiles, WeightFormat};
use super::runtime::{self, GgufRuntime, Runtime};
use super::sampling::Sampler;
use super::template::{self, ChatTemplate};
use super::tokenizer::{self, ControlTexts, TextTokenizer};
use super::vocab::Vocab;
use super::{Completion, Finish, GenParams, Llm, Message, Role, TokenConstraint};

/// The context window assumed for a model whose files do not say theirs.
pub const DEFAULT_CONTEXT: usize = 4096;

/// The fewest reply tokens a turn must have room for (or all it asks for, when fewer).
const MIN_REPLY_TOKENS: usize = 32;

/// The reply as it grows, token by token, decoded incrementally: only the tokens since the
/// last complete character are decoded again at each step (not the whole reply), while
/// tokenizer-level joins (e.g. SentencePiece spaces) still come out right.
#[derive(Default)]
struct Detokenizer {
    tokens: Vec<u32>,
    text: String,
    /// Start of the tokens not yet committed to `text` as whole characters.
    pending_from: usize,
    /// Length of `text` up to the committed tokens.
    committed_len: usize,
    /// What `on_text` has received.
    emitted: usize,
    /// Where a stop string begins, when one ended the turn.
    stop_at: Option<usize>,
}

impl Detokenizer {
    fn push(&mut self, tokenizer: &dyn TextTokenizer, token: u32) -> Result<()> {
        self.tokens.push(token);
        // Decode a little context before the pending tokens so joins are rendered the same
        // as in a whole-reply decode, then keep only what the pending tokens add.
        let ctx = self.pending_from.saturating_sub(4);
        let decode = |ids: &[u32]| tokenizer.decode(ids);
        let before = decode(&self.tokens[ctx..self.pending_from])?;
        let all = decode(&self.tokens[ctx..])?;
        let added = all.strip_prefix(before.as_str()).unwrap_or(&all);
        self.text.truncate(self.committed_len);
        self.text.push_str(added);
        if !added.ends_with('\u{FFFD}') {
            self.pending_from = self.tokens.len();
            self.committed_len = self.text.len();
        }
        Ok(())
    }
}

/// A loaded local model (GGUF or safetensors) with its tokenizer, chat template and KV cache.
pub struct LocalModel {
    name: String,
    model: Box<dyn Runtime>,
    tokenizer: Arc<dyn TextTokenizer>,
    /// Prepended to a freshly encoded prompt that does not start with it.
    bos: Option<u32>,
    template: ChatTemplate,
    eos: Vec<u32>,
    /// Which tokenizer and template were chosen, and why.
    notes: Vec<String>,
    /// Tokens whose keys/values are in the model's cache, in order.
    cached: Vec<u32>,
    /// The text of the last turn (prompt + reply) and the exact tokens it was, so the next turn
    /// continues from the model's own tokens instead of re-tokenizing its reply.
    history_text: String,
    history_tokens: Vec<u32>,
    /// Keep the KV cache between turns (off = prefill every prompt from scratch).
    pub reuse_kv: bool,
    /// The control-token texts kept out of message text.
    control: ControlTexts,
    /// The model's context window in tokens (prompt and reply together).
    context: usize,
    /// What a user should know of the last turns (conversation shortened, reply cut).
    notices: Vec<String>,
}

/// What a model's files give besides its weights.
struct GgufExtras {
    template: Option<String>,
    /// The vocabulary in its metadata: `None` when it has none, `Err` when it cannot be used.
    vocab: Option<Result<Vocab>>,
    /// The trained context length (`ARCH.context_length`, `max_position_embeddings`).
    context: Option<usize>,
}

/// The `max_position_embeddings` of a safetensors checkpoint's config.json.
fn safetensors_context(dir: &std::path::Path) -> Option<usize> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
    config["max_position_embeddings"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// Load a GGUF: its architecture, weights (on the runtime `LSMTUNE_LOCAL_RUNTIME` picks), chat
/// template and vocabulary.
fn load_gguf(files: &ModelFiles) -> Result<(Arch, Box<dyn Runtime>, GgufExtras)> {
    let mut file = std::fs::File::open(&files.weights)
        .with_context(|| format!("cannot open {}", files.weights.display()))?;
    let content = super::files::read_gguf(&mut file)
        .map_err(|e| anyhow!("{} is not a GGUF file: {e}", files.weights.display()))?;
    let arch: Arch = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow!("{}: {e}", files.weights.display()))?;
    let template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok().cloned());
    let vocab = Vocab::present(&content.metadata).then(|| Vocab::from_gguf(&content.metadata));
    let context = content
        .metadata
        .get(&format!("{arch}.context_length"))
        .and_then(|v| v.to_u64().ok())
        .and_then(|n| usize::try_from(n).ok());
    let model = match GgufRuntime::from_env()? {
        GgufRuntime::Lsmtune => runtime::own::load(arch, &content, &mut file),
        GgufRuntime::Candle => runtime::candle::load_gguf(arch, content, &mut file),
    }
    .with_context(|| format!("loading {}", files.weights.display()))?;
    Ok((
        arch,
        model,
        GgufExtras {
            template,
            vocab,
            context,
        },
    ))
}

impl LocalModel {
    /// Load a model: its weights on a runtime (safetensors on candle; a GGUF on the runtime
    /// `LSMTUNE_LOCAL_RUNTIME` picks), then its tokenizer and chat template.
    pub fn load(files: &ModelFiles) -> Result<LocalModel> {
        tracing::debug!(
            "loading {:?} weights from {} (tokenizer {:?})",
            files.format,
            files.weights.display(),
            files.tokenizer
        );
        let (arch, model, extras) = match files.format {
            WeightFormat::Safetensors => {
                let (arch, model) = runtime::candle::load_safetensors(&files.weights)?;
                (
                    arch,
                    model,
                    GgufExtras {
                        template: None,
                        vocab: None,
                        context: safetensors_context(&files.weights),
                    },
                )
            }
            WeightFormat::Gguf => load_gguf(files)?,
        };
        let chosen = tokenizer::choose(files, extras.vocab)?;
        let mut notes = vec![chosen.note];
        let control = ControlTexts::new(chosen.tokenizer.as_ref())?;
        let context = match extras.context.filter(|&n| n > 0) {
            Some(n) => n,
            None => {
                notes.push(format!(
                    "context window: {} does not say its own; assuming {DEFAULT_CONTEXT} tokens",
                    files.weights.display()
                ));
                DEFAULT_CONTEXT
            }
        };
        // The template: tokenizer_config.json, chat_template.jinja, the GGUF's own, the
        // family's built-in; rendered with the bos/eos texts of the file it came with.
        let from_config = files
            .tokenizer_config
            .as_deref()
            .and_then(template::from_tokenizer_config);
        let (source, bos, eos_text, origin) = if let Some((t, b, e)) = from_config {
            (t, b, e, "tokenizer_config.json".to_string())
        } else if let Some(path) = &files.chat_template {
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            (
                t,
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                "chat_template.jinja".to_string(),
            )
        } else if let Some(t) = extras.template {
            (
                t,
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                "the GGUF metadata".to_string(),
            )
        } else {
            (
                template::builtin(arch).to_string(),
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                format!("built-in for {arch} (the model ships none)"),
            )
        };
        notes.push(format!("chat template: {origin}"));
        // Errors name the template's file: it may be hostile (see template::FUEL).
        let named = match origin.as_str() {
            "tokenizer_config.json" => files.tokenizer_config.as_deref(),
            "chat_template.jinja" => files.chat_template.as_deref(),
            _ => None,
        }
        .map(|p| format!("the chat template of {}", p.display()))
        .unwrap_or_else(|| {
            format!(
                "the chat template ({origin}) of {}",
                files.weights.display()
            )
        });
        let template = ChatTemplate::new(&source, &bos, &eos_text)
            .with_context(|| format!("{named} cannot be used"))?
            .named(named);
        Ok(LocalModel {
            name: format!("local:{arch} ({})", files.weights.display()),
            model,
            tokenizer: chosen.tokenizer,
            bos: chosen.bos,
            template,
            eos: chosen.eos,
            notes,
            cached: Vec::new(),
            history_text: String::new(),
            history_tokens: Vec::new(),
            reuse_kv: true,
            control,
            context,
            notices: Vec::new(),
        })
    }

    /// The model's context window in tokens (prompt and reply together).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The template rendered with each message's control-token texts replaced by stand-ins
    /// ([`ControlTexts::defuse`]), as [`Self::encode_rendered`] takes it.
    fn rendered(&self, messages: &[Message]) -> Result<String> {
        let defused: Vec<Message> = messages
            .iter()
            .map(|m| Message {
                role: m.role,
                content: self.control.defuse(&m.content),
            })
            .collect();
        self.template.render(&defused, true)
    }

    /// Tokens of a prompt from [`Self::rendered`]: control tokens only where the template
    /// wrote them.
    fn encode_rendered(&self, prompt: &str) -> Result<Vec<u32>> {
        self.control.encode(self.tokenizer.as_ref(), prompt)
    }

    /// The tokens a fresh turn (no KV cache) feeds the model for `messages`: the template's
    /// markers as control tokens, the messages' text as text whatever it spells.
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>> {
        Ok(self.with_bos(self.encode_rendered(&self.rendered(messages)?)?))
    }

    /// The prompt, its tokens and the room left for the reply, for `messages` within the
    /// context window: the oldest exchanges after the first turn left out while the prompt and
    /// `max_tokens` do not fit, then the reply cut to what is left; an error when no reply of
    /// even [`MIN_REPLY_TOKENS`] fits.
    fn fit(
        &mut self,
        messages: &[Message],
        max_tokens: usize,
    ) -> Result<(String, Vec<u32>, usize)> {
        let mut msgs = messages.to_vec();
        let mut dropped = 0;
        let (prompt, tokens) = loop {
            let prompt = self.rendered(&msgs)?;
            let tokens = self.prompt_tokens(&prompt)?;
            let first = msgs.iter().position(|m| m.role == Role::User);
            match first {
                Some(f) if tokens.len() + max_tokens > self.context && msgs.len() >= f + 4 => {
                    msgs.drain(f + 1..f + 3);
                    dropped += 1;
                }
                _ => break (prompt, tokens),
            }
        };
        let window = self.context;
        if dropped > 0 {
            self.notices.push(format!(
                "the conversation is longer than {}'s context window ({window} tokens): left out the {dropped} oldest exchange(s) after the first turn",
                self.name
            ));
        }
        let room = window.saturating_sub(tokens.len());
        if room < max_tokens.min(MIN_REPLY_TOKENS) {
            bail!(
                "the prompt is {} tokens and {}'s context window is {window} tokens: no room is left for a reply{}",
                tokens.len(),
                self.name,
                if dropped > 0 {
                    " even with every earlier exchange left out"
                } else {
                    ""
                }
            );
        }
        if room < max_tokens {
            self.notices.push(format!(
                "the reply is limited to {room} tokens: the prompt takes {} of {}'s {window}-token context window",
                tokens.len(),
                self.name
            ));
        }
        Ok((prompt, tokens, room.min(max_tokens)))
    }

    /// Which tokenizer and chat template were chosen, one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The prompt as the model sees it for `messages` (the rendered chat template), as text.
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        Ok(self.control.restore(&self.rendered(messages)?))
    }

    /// Forget the KV cache (the next turn prefills its whole prompt).
    pub fn reset(&mut self) -> Result<()> {
        self.cached.clear();
        self.model.clear()?;
        Ok(())
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Arc<dyn TextTokenizer> {
        &self.tokenizer
    }

    /// The model's end-of-turn tokens.
    pub fn eos_tokens(&self) -> &[u32] {
        &self.eos
    }

    /// Tokens the model's tokenizer makes of a text.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text)?.len())
    }

    /// Tokens of prompt text: special tokens written in it (the template's) are parsed.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// Tokens of a whole prompt text, special tokens parsed wherever written: BOS first when
    /// the model wants it and the template did not write it.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        Ok(self.with_bos(self.encode(prompt)?))
    }

    /// BOS put first when the model wants it and the tokens do not start with it.
    fn with_bos(&self, mut tokens: Vec<u32>) -> Vec<u32> {
        if let Some(bos) = self.bos
            && tokens.first() != Some(&bos)
        {
            tokens.insert(0, bos);
        }
        tokens
    }

    /// Tokens of a prompt from [`Self::rendered`]: the previous turn's exact tokens plus the
    /// new suffix when the prompt continues the previous turn, else a fresh encoding.
    fn prompt_tokens(&self, prompt: &str) -> Result<Vec<u32>> {
        if !self.history_text.is_empty()
            && let Some(suffix) = prompt.strip_prefix(self.history_text.as_str())
        {
            let mut tokens = self.history_tokens.clone();
            tokens.extend(self.encode_rendered(suffix)?);
            return Ok(tokens);
        }
        Ok(self.with_bos(self.encode_rendered(prompt)?))
    }

    /// Append generated tokens to the reply: stream the new text, and say whether a stop string
    /// ended the turn.
    fn take(
        &self,
        out: &mut Detokenizer,
        tokens: &[u32],
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<Finish>> {
        for &t in tokens {
            out.push(self.tokenizer.as_ref(), t)?;
            if !out.text.ends_with('\u{FFFD}')
                && out.text.len() > out.emitted
                && out.text.is_char_boundary(out.emitted)
            {
                on_text(&out.text[out.emitted..]);
                out.emitted = out.text.len();
            }
            if let Some(stop) = params
                .stop
                .iter()
                .find(|s| !s.is_empty() && out.text.ends_with(s.as_str()))
            {
                out.stop_at = Some(out.text.len() - stop.len());
                return Ok(Some(Finish::Stop));
            }
        }
        Ok(None)
    }

    /// Feed tokens at the end of the KV cache (after [`reset`](Self::reset), from position 0);
    /// returns the logits after the last one. For checks against a reference implementation.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let logits = self.model.forward(tokens, self.cached.len())?;
        self.cached.extend_from_slice(tokens);
        Ok(logits)
    }
}

impl Llm for LocalModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn chat(
        &mut self,
        messages: &[Message],
        mut constraint: Option<&mut dyn TokenConstraint>,
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        let (prompt, tokens, max_new) = self.fit(messages, params.max_tokens)?;
        if tokens.is_empty() {
            bail!("the prompt encodes to no tokens");
        }
        // Reuse the cache when it holds a strict prefix of this prompt; a runtime that can cut
        // its cache back also keeps the longest common prefix (a template that does not
        // reproduce the last reply verbatim, or a new conversation with the same system
        // prompt), leaving at least one token to run.
        let reuse =
            self.reuse_kv && self.cached.len() < tokens.len() && tokens.starts_with(&self.cached);
        if !reuse {
            let common = self
                .cached
                .iter()
                .zip(&tokens)
                .take_while(|(a, b)| a == b)
                .count()
                .min(tokens.len() - 1);
            if self.reuse_kv && common > 0 && self.model.truncate(common) {
                self.cached.truncate(common);
            } else {
                self.reset()?;
            }
        }
        let cached_tokens = self.cached.len();
        let prefill_start = Instant::now();
        let mut logits = self.feed(&tokens[cached_tokens..])?;
        let prefill_seconds = prefill_start.elapsed().as_secs_f64();

        let mut sampler = Sampler::new(params.seed, params.temperature, params.top_p);
        // A constraint failing is the model's vocabulary against the grammar: name the file.
        let name = self.name.clone();
        let failed = |e: anyhow::Error| {
            anyhow!("{name}: the proposal grammar cannot work with this model's vocabulary: {e:#}")
        };
        let decode_start = Instant::now();
        let mut out = Detokenizer::default();
        let finish = loop {
            if out.tokens.len() >= max_new {
                break Finish::Length;
            }
            // Tokens the constraint forces: taken without sampling, fed in one batch.
            if let Some(c) = constraint.as_deref_mut() {
                let mut forced = c.forced().map_err(failed)?;
                forced.truncate(max_new - out.tokens.len());
                if !forced.is_empty() {
                    for &t in &forced {
                        c.consume(t).map_err(failed)?;
                    }
                    if let Some(f) = self.take(&mut out, &forced, params, on_text)? {
                        break f;
                    }
                    logits = self.feed(&forced)?;
                    continue;
                }
            }
            if params.repeat_penalty != 1.0 {
                let start = out.tokens.len().saturating_sub(params.repeat_last_n);
                for &t in &out.tokens[start..] {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = if *l >= 0.0 {
                            *l / params.repeat_penalty
                        } else {
                            *l * params.repeat_penalty
                        };
                    }
                }
            }
            if let Some(c) = constraint.as_deref_mut() {
                let eos_logits: Vec<(usize, f32)> = self
                    .eos
                    .iter()
                    .filter_map(|&e| logits.get(e as usize).map(|l| (e as usize, *l)))
                    .collect();
                let any = c.restrict(&mut logits).map_err(failed)?;
                // End-of-turn exactly when the constraint is satisfied.
                let complete = c.is_complete();
                for &(e, original) in &eos_logits {
                    logits[e] = if complete {
                        original
                    } else {
                        f32::NEG_INFINITY
                    };
                }
                if !any && !complete {
                    break Finish::Constraint;
                }
            }
            let Some(token) = sampler.sample(&logits) else {
                // Nothing finite to choose from: the constraint left no token.
                break Finish::Constraint;
            };
            if self.eos.contains(&token) && !params.ignore_eos {
                break Finish::Eos;
            }
            if let Some(c) = constraint.as_deref_mut() {
                c.consume(token).map_err(failed)?;
            }
            if let Some(f) = self.take(&mut out, &[token], params, on_text)? {
                break f;
            }
            logits = self.feed(&[token])?;
        };
        let generated = out.tokens;
        let mut text = out.text;
        let emitted = out.emitted;
        if finish == Finish::Stop {
            // The stop string itself is not part of the reply.
            text.truncate(out.stop_at.unwrap_or(text.len()));
        }
        if text.len() > emitted && text.is_char_boundary(emitted) {
            on_text(&text[emitted..]);
        }
        // Remember this turn's exact tokens, unless a stop string cut the text short of them.
        if finish == Finish::Stop {
            self.history_text.clear();
            self.history_tokens.clear();
        } else {
            self.history_text = format!("{prompt}{text}");
            self.history_tokens = tokens.clone();
            self.history_tokens.extend_from_slice(&generated);
        }
        Ok(Completion {
            text,
            prompt_tokens: tokens.len(),
            cached_tokens,
            completion_tokens: generated.len(),
            prefill_seconds,
            decode_seconds: decode_start.elapsed().as_secs_f64(),
            finish,
        })
    }
}
