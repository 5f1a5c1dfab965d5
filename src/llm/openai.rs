//! The OpenAI-compatible backend: chat completions on OpenAI, vLLM, llama.cpp's server, Ollama
//! or anything speaking the same wire format (the HTTP itself is in [`crate::http`]).
//!
//! The proposal schema goes out as `response_format: {type: json_schema, strict: true}`; a
//! server that refuses it is asked again with `json_object`, then with no response format, and
//! the downgrade is remembered and reported. 429 and 5xx are retried with exponential backoff
//! (honouring `Retry-After`), a timeout a bounded number of times; 401, 404, refused connections,
//! non-JSON bodies and truncated replies are clear errors or flagged finishes. The API key is
//! only ever written into the Authorization header: `Debug` hides it, it is registered with
//! [`crate::http::register_secret`] so no reply can bring it back (the body is redacted before it
//! is decoded, and the decoded reply and error texts once more), and no message contains it.
//! Credentials in the base URL are taken out of it when the endpoint is configured.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde_json::{Value as J, json};

use super::{Completion, Finish, GenParams, Llm, Message, TokenConstraint};
use crate::http;

/// An API key that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key, trimmed; None when empty or when it holds a control character (a pasted
    /// newline), which no header may carry: [`ApiKey::checked`] says why without showing it.
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        ApiKey::checked(key, "the API key").ok().flatten()
    }

    /// A key, trimmed; None when empty; an error naming `what` (never the key) when it holds a
    /// control character.
    pub fn checked(key: impl Into<String>, what: &str) -> anyhow::Result<Option<ApiKey>> {
        let k = key.into().trim().to_string();
        if k.chars().any(char::is_control) {
            anyhow::bail!(
                "{what} contains a control character (a pasted newline?); it was not sent anywhere: set it again without one"
            );
        }
        http::register_secret(&k);
        Ok((!k.is_empty()).then_some(ApiKey(k)))
    }

    /// The key from the environment variable `var`, if set and not empty; an error when it
    /// holds a control character.
    pub fn from_env(var: &str) -> anyhow::Result<Option<ApiKey>> {
        match std::env::var(var) {
            Ok(k) => ApiKey::checked(k, &format!("${var}")),
            Err(_) => Ok(None),
        }
    }

    /// The key itself, for an Authorization header and nothing else.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(hidden)")
    }
}

/// How the reply's form is requested, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// `json_schema` with `strict: true`.
    JsonSchema,
    /// `json_object`: JSON, shape not enforced.
    JsonObject,
    /// Nothing requested: the prompt alone asks for JSON.
    Plain,
}

impl ResponseFormat {
    pub fn name(self) -> &'static str {
        match self {
            ResponseFormat::JsonSchema => "json_schema (strict)",
            ResponseFormat::JsonObject => "json_object",
            ResponseFormat::Plain => "none",
        }
    }

    pub(crate) fn weaker(self) -> Option<ResponseFormat> {
        match self {
            ResponseFormat::JsonSchema => Some(ResponseFormat::JsonObject),
            ResponseFormat::JsonObject => Some(ResponseFormat::Plain),
            ResponseFormat::Plain => None,
        }
    }
}

/// Where and how to reach the endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// Per request.
    pub timeout: Duration,
    /// Retries after the first attempt (429, 5xx, timeouts).
    pub max_retries: u32,
    /// First backoff; doubled per retry, capped at 30 s; `Retry-After` wins when larger.
    pub backoff: Duration,
}

impl Endpoint {
    /// `base_url`/`model` from flags or `OPENAI_BASE_URL` / `OPENAI_MODEL`; the key from the
    /// environment variable `key_env` (default `OPENAI_API_KEY`). None when no base URL is
    /// configured anywhere. Credentials in the URL (`http://user:pass@host/v1`) are taken out
    /// of `base_url` and only go back into the requests ([`http::take_credentials`]).
    /// An error when the URL is not http(s) or the key holds a control character.
    pub fn from_env(
        base_url: Option<String>,
        model: Option<String>,
        key_env: &str,
    ) -> anyhow::Result<Option<Endpoint>> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(base_url) = base_url.or_else(|| env("OPENAI_BASE_URL")) else {
            return Ok(None);
        };
        check_base_url(&base_url)?;
        Ok(Some(Endpoint {
            base_url: http::take_credentials(base_url.trim_end_matches('/')),
            model: model
                .or_else(|| env("OPENAI_MODEL"))
                .unwrap_or_else(|| "gpt-4o".to_string()),
            api_key: ApiKey::from_env(key_env)?,
            timeout: Duration::from_secs(120),
            max_retries: 4,
            backoff: Duration::from_millis(500),
        }))
    }
}

/// An endpoint's base URL must be http:// or https:// with a host; anything else could never
/// answer, and is said so before a single benchmark runs.
pub fn check_base_url(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => anyhow::bail!(
            "the endpoint URL `{}` is not http(s)://HOST[:PORT][/PATH] (e.g. http://127.0.0.1:8080/v1)",
            http::without_userinfo(url)
        ),
    }
}

/// A chat-completions client.
pub struct OpenAiBackend {
    pub endpoint: Endpoint,
    /// The JSON Schema a reply must follow (sent as `response_format`), if any.
    schema: Option<J>,
    format: ResponseFormat,
    /// What happened that a user should know (downgrades, retries).
    pub notices: Vec<String>,
    /// Attempts that failed and were retried, over the backend's life.
    pub retries: u32,
    /// What the server is, in the backend's name: `openai`, `lmstudio`.
    label: String,
}

impl OpenAiBackend {
    /// Name the server kind shown in the backend's name (default `openai`).
    pub fn labelled(mut self, label: &str) -> OpenAiBackend {
        self.label = label.to_string();
        self
    }

    pub fn new(endpoint: Endpoint, schema: Option<J>) -> OpenAiBackend {
        let format = if schema.is_some() {
            ResponseFormat::JsonSchema
        } else {
            ResponseFormat::Plain
        };
        OpenAiBackend {
            endpoint,
            schema,
            format,
            notices: Vec::new(),
            retries: 0,
            label: "openai".into(),
        }
    }

    /// The response format now in use (after any downgrade).
    pub fn format(&self) -> ResponseFormat {
        self.format
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.endpoint.base_url)
    }

    fn body(&self, messages: &[Message], params: &GenParams) -> J {
        let mut body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        });
        if !params.stop.is_empty() {
            body["stop"] = json!(params.stop);
        }
        match (self.format, &self.schema) {
            (ResponseFormat::JsonSchema, Some(schema)) => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "proposal", "strict": true, "schema": schema}
                });
            }
            (ResponseFormat::JsonObject, schema) => {
                // llama.cpp's servers take a schema inside json_object; others ignore it or
                // refuse it (then the next downgrade drops the response format).
                body["response_format"] = match schema {
                    Some(schema) => json!({"type": "json_object", "schema": schema}),
                    None => json!({"type": "json_object"}),
                };
            }
            _ => {}
        }
        body
    }

    /// One request with retries ([`http::Retrying`]); returns the successful reply's JSON, or
    /// the status and body of a refusal (4xx other than 429) for the caller to explain or work
    /// around.
    fn request(&mut self, body: &J) -> Result<std::result::Result<J, (u16, String)>> {
        let url = self.url();
        let how = http::Retrying {
            max_retries: self.endpoint.max_retries,
            backoff: self.endpoint.backoff,
            timeout: self.endpoint.timeout,
            server: "the endpoint",
            timeout_hint: "raise --openai-timeout or check the server",
            connect_hint: "is the server running, and is --openai-base-url right?",
        };
        let key = self.endpoint.api_key.as_ref().map(ApiKey::secret);
        let format = self.format;
        let mut log = http::Retried::default();
        // Some servers (llama-cpp-python) answer an unsupported response_format with a 500
        // carrying the validation error: that is a refusal to downgrade from, not an outage to
        // wait out.
        let outcome = how.post_for_json(
            &url,
            key,
            body,
            |r| format != ResponseFormat::Plain && refuses_format(&error_message(&r.body)),
            error_message,
            &mut log,
        );
        self.notices.append(&mut log.notices);
        self.retries += log.retries;
        Ok(outcome?.map_err(|reply| (reply.status, reply.body)))
    }

    /// A non-retryable HTTP status, explained.
    fn refusal(&self, status: u16, body: &str) -> anyhow::Error {
        let url = self.url();
        let msg = error_message(body);
        match status {
            401 | 403 => anyhow!(
                "{url} refused the request (HTTP {status}): the API key is missing or not accepted; set it in the environment variable named by --openai-api-key-env (default OPENAI_API_KEY). Server said: {msg}"
            ),
            404 => anyhow!(
                "{url} answered HTTP 404: check --openai-base-url (it usually ends in /v1) and that the model `{}` exists there. Server said: {msg}",
                self.endpoint.model
            ),
            _ => anyhow!("{url} answered HTTP {status}: {msg}"),
        }
    }
}

pub(crate) use crate::http::excerpt;

/// The `error.message` of an OpenAI-style error body, else an excerpt; redacted once decoded.
fn error_message(body: &str) -> String {
    let text = serde_json::from_str::<J>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| excerpt(body));
    http::redact(&text).into_owned()
}

/// Does a 400 answer say the response format is what the server cannot do?
fn refuses_format(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("response_format")
        || b.contains("json_schema")
        || b.contains("json_object")
        || b.contains("strict")
        || b.contains("schema")
}

impl Llm for OpenAiBackend {
    fn name(&self) -> String {
        format!(
            "{}:{} ({})",
            self.label, self.endpoint.model, self.endpoint.base_url
        )
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn set_response_schema(&mut self, schema: Option<&J>) {
        if let Some(s) = schema {
            // A backend built without a schema (free text) stays without one.
            if self.schema.is_some() {
                self.schema = Some(s.clone());
            }
        }
    }

    /// Remote models take no token constraint: the schema travels as `response_format`.
    fn chat(
        &mut self,
        messages: &[Message],
        _constraint: Option<&mut dyn TokenConstraint>,
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        let started = Instant::now();
        let reply = loop {
            let body = self.body(messages, params);
            match self.request(&body)? {
                Ok(v) => break v,
                Err((status, body)) => match self.format.weaker() {
                    Some(weaker)
                        if (matches!(status, 400 | 422) || status >= 500)
                            && refuses_format(&error_message(&body)) =>
                    {
                        self.notices.push(format!(
                            "the endpoint refused response_format {} (HTTP {status}: {}); asking with {} instead",
                            self.format.name(),
                            error_message(&body),
                            weaker.name()
                        ));
                        self.format = weaker;
                    }
                    _ => return Err(self.refusal(status, &body)),
                },
            }
        };
        let choice = reply
            .pointer("/choices/0")
            .ok_or_else(|| anyhow!("the reply has no choices: {}", excerpt(&reply.to_string())))?;
        // Decoded, the content may spell a secret the raw body did not: redact it again.
        let text = http::redact(
            choice
                .pointer("/message/content")
                .and_then(|c| c.as_str())
                .unwrap_or_default(),
        )
        .into_owned();
        let finish = match choice.get("finish_reason").and_then(|f| f.as_str()) {
            Some("length") => Finish::Length,
            Some("stop") | None => Finish::Eos,
            Some(_) => Finish::Stop,
        };
        if finish == Finish::Length {
            self.notices.push(format!(
                "the reply was cut at max_tokens ({}): it may be incomplete",
                params.max_tokens
            ));
        }
        on_text(&text);
        let usage = |p: &str| reply.pointer(p).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        Ok(Completion {
            text,
            prompt_tokens: usage("/usage/prompt_tokens"),
            cached_tokens: usage("/usage/prompt_tokens_details/cached_tokens"),
            completion_tokens: usage("/usage/completion_tokens"),
            prefill_seconds: 0.0,
            decode_seconds: started.elapsed().as_secs_f64(),
            finish,
        })
    }
}
