//! Ollama's native chat API (`POST /api/chat`), for `--backend ollama` and for an
//! `--openai-base-url` that turns out to be an Ollama (see [`super::servers::is_ollama`]).
//!
//! Why not Ollama's OpenAI-compatible route: it cuts every prompt to the model's `num_ctx`
//! (2,048 to 4,096 tokens unless the model or server says otherwise) without a word, and a
//! tuning conversation passes 4,000 tokens after a few turns, so the model would silently lose
//! the machine facts and the option catalog of the first turn. The native route takes
//! `options.num_ctx` per request: this backend sets it to cover the whole conversation plus the
//! reply (a power of two, at least 8,192, never lowered within a run since each change makes
//! Ollama reload the model), capped at the model's trained context length (`POST /api/show`).
//! A conversation longer than that loses its oldest exchanges (never the first turn), with a
//! notice, instead of being cut blindly. The proposal schema goes as `format` (Ollama 0.5+); a
//! server refusing it is asked with `"json"`, then with nothing, as the OpenAI backend does.
//! `stream: false`; 429, 5xx and timeouts are retried with backoff; the key, when one is
//! configured for a proxy in front of Ollama, only goes into the Authorization header.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value as J, json};

use super::openai::{ApiKey, ResponseFormat, excerpt};
use super::{Completion, Finish, GenParams, Llm, Message, Role, TokenConstraint};
use crate::http;

/// The smallest context window asked for.
pub const MIN_NUM_CTX: usize = 8192;

/// A chat client for Ollama's native API.
pub struct OllamaBackend {
    /// The server's root URL (no `/v1`), e.g. `http://127.0.0.1:11434`.
    pub root: String,
    pub model: String,
    api_key: Option<ApiKey>,
    /// Per request.
    pub timeout: Duration,
    /// Retries after the first attempt (429, 5xx, timeouts).
    pub max_retries: u32,
    /// First backoff; doubled per retry, capped at 30 s.
    pub backoff: Duration,
    schema: Option<J>,
    format: ResponseFormat,
    /// The `num_ctx` of the last request (0 before the first).
    pub num_ctx: usize,
    /// The model's trained context length, when `/api/show` says.
    pub context_length: Option<usize>,
    /// What happened that a user should know (window raised, turns dropped, downgrades).
    pub notices: Vec<String>,
    pub retries: u32,
}

impl OllamaBackend {
    pub fn new(
        root: &str,
        model: &str,
        api_key: Option<ApiKey>,
        timeout: Duration,
        schema: Option<J>,
    ) -> OllamaBackend {
        OllamaBackend {
            root: super::servers::native_root(root),
            model: model.to_string(),
            api_key,
            timeout,
            max_retries: 4,
            backoff: Duration::from_millis(500),
            format: if schema.is_some() {
                ResponseFormat::JsonSchema
            } else {
                ResponseFormat::Plain
            },
            schema,
            num_ctx: 0,
            context_length: None,
            notices: Vec::new(),
            retries: 0,
        }
    }

    /// Ask the server for the model's trained context length (`POST /api/show`,
    /// `model_info["ARCH.context_length"]`); leaves it unknown when the server does not say.
    pub fn probe_context(&mut self) {
        let url = format!("{}/api/show", self.root);
        let body = json!({"model": self.model, "name": self.model});
        let key = self.api_key.as_ref().map(ApiKey::secret);
        let Ok(reply) = http::post_json(&url, key, &body, self.timeout) else {
            return;
        };
        if reply.status != 200 {
            return;
        }
        let Ok(v) = serde_json::from_str::<J>(&reply.body) else {
            return;
        };
        self.context_length = v
            .get("model_info")
            .and_then(|m| m.as_object())
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.ends_with(".context_length"))
                    .and_then(|(_, v)| v.as_u64())
            })
            .map(|n| n as usize)
            .filter(|&n| n > 0);
    }

    /// A generous count of the tokens `messages` take: every digit one token (tokenizers such
    /// as Qwen's split numbers into digits, and the prompts are full of them), other bytes one
    /// per three, plus a few per message for the template.
    pub fn estimate_tokens(messages: &[Message]) -> usize {
        messages
            .iter()
            .map(|m| {
                let digits = m.content.bytes().filter(u8::is_ascii_digit).count();
                let other = m.content.len() - digits;
                digits + other.div_ceil(3) + 8
            })
            .sum()
    }

    /// The messages to send and the `num_ctx` to send with them.
    fn fit(&mut self, messages: &[Message], max_tokens: usize) -> (Vec<Message>, usize) {
        let need = |m: &[Message]| Self::estimate_tokens(m) + max_tokens + 256;
        let mut msgs = messages.to_vec();
        if let Some(limit) = self.context_length
            && need(&msgs) > limit
        {
            // Drop the oldest exchange (reply + feedback) after the first turn until it fits.
            let before = need(&msgs);
            let mut dropped = 0;
            if let Some(first) = msgs.iter().position(|m| m.role == Role::User) {
                while need(&msgs) > limit && msgs.len() >= first + 4 {
                    msgs.drain(first + 1..first + 3);
                    dropped += 1;
                }
            }
            self.notices.push(format!(
                "the conversation (about {before} tokens with the reply) is longer than {}'s context window ({limit} tokens): {}",
                self.model,
                if dropped > 0 {
                    format!("left out the {dropped} oldest exchange(s) after the first turn")
                } else {
                    "nothing can be left out; Ollama will cut the prompt".to_string()
                }
            ));
        }
        let mut num_ctx = need(&msgs).next_power_of_two().max(MIN_NUM_CTX);
        num_ctx = num_ctx.max(self.num_ctx);
        if let Some(limit) = self.context_length {
            num_ctx = num_ctx.min(limit);
        }
        if self.num_ctx != 0 && num_ctx > self.num_ctx {
            self.notices.push(format!(
                "raised Ollama's context window (num_ctx) from {} to {num_ctx} tokens for a longer conversation; Ollama reloads the model once",
                self.num_ctx
            ));
        }
        self.num_ctx = num_ctx;
        (msgs, num_ctx)
    }

    fn body(&self, messages: &[Message], params: &GenParams, num_ctx: usize) -> J {
        let mut options = json!({
            "num_ctx": num_ctx,
            "num_predict": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        });
        if !params.stop.is_empty() {
            options["stop"] = json!(params.stop);
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": false,
            "options": options,
        });
        match (self.format, &self.schema) {
            (ResponseFormat::JsonSchema, Some(schema)) => body["format"] = schema.clone(),
            (ResponseFormat::JsonObject, _) => body["format"] = json!("json"),
            _ => {}
        }
        body
    }

    /// One request with retries ([`http::Retrying`]): the reply's JSON, or the status and body
    /// of a refusal.
    fn request(&mut self, body: &J) -> Result<std::result::Result<J, (u16, String)>> {
        let url = format!("{}/api/chat", self.root);
        let how = http::Retrying {
            max_retries: self.max_retries,
            backoff: self.backoff,
            timeout: self.timeout,
            server: "Ollama",
            timeout_hint: "raise --openai-timeout (a model loading or a long reply on a CPU takes minutes) or check the server",
            connect_hint: "is Ollama running (`ollama serve`), and do OLLAMA_HOST / --openai-base-url point at it?",
        };
        let key = self.api_key.as_ref().map(ApiKey::secret);
        let format = self.format;
        let mut log = http::Retried::default();
        let outcome = how.post_for_json(
            &url,
            key,
            body,
            |r| format != ResponseFormat::Plain && refuses_format(&error_text(&r.body)),
            error_text,
            &mut log,
        );
        self.notices.append(&mut log.notices);
        self.retries += log.retries;
        Ok(outcome?.map_err(|r| (r.status, r.body)))
    }
}

/// Ollama's `{"error": "..."}`, else an excerpt of the body; redacted once decoded.
fn error_text(body: &str) -> String {
    let text = serde_json::from_str::<J>(body)
        .ok()
        .and_then(|v| {
            v.get("error").and_then(|e| {
                e.as_str()
                    .map(str::to_string)
                    .or_else(|| e.get("message")?.as_str().map(str::to_string))
            })
        })
        .unwrap_or_else(|| excerpt(body));
    http::redact(&text).into_owned()
}

/// Does an error say the `format` field is what the server cannot do?
fn refuses_format(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("format") || t.contains("schema") || t.contains("grammar")
}

impl Llm for OllamaBackend {
    fn name(&self) -> String {
        format!("ollama:{} ({})", self.model, self.root)
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn set_response_schema(&mut self, schema: Option<&J>) {
        if let (Some(s), Some(_)) = (schema, &self.schema) {
            self.schema = Some(s.clone());
        }
    }

    /// The schema travels as `format`; no token constraint is taken.
    fn chat(
        &mut self,
        messages: &[Message],
        _constraint: Option<&mut dyn TokenConstraint>,
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        let started = Instant::now();
        let (msgs, num_ctx) = self.fit(messages, params.max_tokens);
        let reply = loop {
            let body = self.body(&msgs, params, num_ctx);
            match self.request(&body)? {
                Ok(v) => break v,
                Err((status, body)) => {
                    let text = error_text(&body);
                    match self.format.weaker() {
                        Some(weaker)
                            if (status == 400 || status >= 500) && refuses_format(&text) =>
                        {
                            self.notices.push(format!(
                                "Ollama refused format {} (HTTP {status}: {text}); asking with {} instead",
                                self.format.name(),
                                weaker.name()
                            ));
                            self.format = weaker;
                        }
                        _ if status == 404 => bail!(
                            "Ollama at {} has no model `{}` (HTTP 404: {text}): `ollama pull {}`, or name one `ollama list` shows",
                            self.root,
                            self.model,
                            self.model
                        ),
                        _ if status == 401 || status == 403 => bail!(
                            "{}/api/chat refused the request (HTTP {status}): the server wants an API key; name the variable holding it with --openai-api-key-env. Server said: {text}",
                            self.root
                        ),
                        _ => bail!("{}/api/chat answered HTTP {status}: {text}", self.root),
                    }
                }
            }
        };
        if let Some(e) = reply.get("error").and_then(|e| e.as_str()) {
            bail!("Ollama answered with an error: {}", http::redact(e));
        }
        // Decoded, the content may spell a secret the raw body did not: redact it again.
        let text = reply
            .pointer("/message/content")
            .and_then(|c| c.as_str())
            .map(|c| http::redact(c).into_owned())
            .ok_or_else(|| {
                anyhow!(
                    "Ollama's reply has no message.content: {}",
                    excerpt(&reply.to_string())
                )
            })?;
        let finish = match reply.get("done_reason").and_then(|d| d.as_str()) {
            Some("length") => Finish::Length,
            _ => Finish::Eos,
        };
        if finish == Finish::Length {
            self.notices.push(format!(
                "the reply was cut at max_tokens ({}): it may be incomplete",
                params.max_tokens
            ));
        }
        on_text(&text);
        let count = |k: &str| reply.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let seconds = |k: &str| count(k) as f64 / 1e9;
        let prompt_tokens = count("prompt_eval_count") as usize;
        if prompt_tokens > 0 && prompt_tokens + 16 >= num_ctx {
            self.notices.push(format!(
                "Ollama evaluated {prompt_tokens} prompt tokens with num_ctx {num_ctx}: the prompt may have been cut"
            ));
        }
        let decode = seconds("eval_duration");
        Ok(Completion {
            text,
            prompt_tokens,
            cached_tokens: 0,
            completion_tokens: count("eval_count") as usize,
            prefill_seconds: seconds("prompt_eval_duration"),
            decode_seconds: if decode > 0.0 {
                decode
            } else {
                started.elapsed().as_secs_f64()
            },
            finish,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(limit: Option<usize>) -> OllamaBackend {
        let mut b = OllamaBackend::new(
            "http://127.0.0.1:11434/v1",
            "m",
            None,
            Duration::from_secs(1),
            None,
        );
        b.context_length = limit;
        b
    }

    fn conversation(turns: usize, chars: usize) -> Vec<Message> {
        let mut m = vec![Message::system("s"), Message::user("x".repeat(chars))];
        for _ in 0..turns {
            m.push(Message::assistant("y".repeat(chars)));
            m.push(Message::user("z".repeat(chars)));
        }
        m
    }

    #[test]
    fn the_window_covers_the_conversation_grows_by_doubling_and_never_shrinks() {
        let mut b = backend(Some(131_072));
        assert_eq!(b.root, "http://127.0.0.1:11434");
        let (m, n) = b.fit(&conversation(0, 3000), 768);
        assert_eq!((m.len(), n), (2, MIN_NUM_CTX));
        // Nine messages of 6,000 bytes, about 18,000 tokens, plus the reply: 32,768.
        let (m, n) = b.fit(&conversation(4, 6_000), 768);
        assert_eq!((m.len(), n), (10, 32_768));
        assert!(b.notices.iter().any(|n| n.contains("raised")));
        // A shorter conversation does not lower it (that would reload the model).
        let (_, n) = b.fit(&conversation(0, 3000), 768);
        assert_eq!(n, 32_768);
    }

    #[test]
    fn past_the_model_window_the_oldest_exchanges_go_first_turn_kept() {
        let mut b = backend(Some(16_384));
        let conv = conversation(6, 9_000); // ~3,000 tokens a message
        let (m, n) = b.fit(&conv, 768);
        assert_eq!(n, 16_384);
        assert!(OllamaBackend::estimate_tokens(&m) + 768 <= 16_384);
        assert_eq!(m[1], conv[1], "the first turn is kept");
        assert_eq!(m.last(), conv.last(), "the newest feedback is kept");
        assert!(m.len() < conv.len() && m.len() % 2 == 0);
        assert!(
            b.notices.iter().any(|n| n.contains("left out")),
            "{:?}",
            b.notices
        );
    }

    #[test]
    fn digits_count_one_token_each() {
        let m = [Message::user("67108864")];
        assert_eq!(OllamaBackend::estimate_tokens(&m), 8 + 8);
    }
}
