//! The model servers people run on their own machine, Ollama and LM Studio: where each listens,
//! which model to use when none is named, and whether an OpenAI-style URL is really an Ollama
//! (whose OpenAI-compatible route silently cuts prompts at its context window, so lsmtune talks
//! to its native API instead; see [`super::ollama`]). The HTTP itself is in [`crate::http`].
//!
//! - Ollama: `--openai-base-url` if given, else `OLLAMA_HOST` read as Ollama reads it
//!   (`HOST[:PORT]` or `SCHEME://HOST[:PORT]`; port 11434 unless a scheme without port says
//!   80/443), else `http://127.0.0.1:11434`.
//! - LM Studio: `--openai-base-url` if given, else `http://127.0.0.1:1234/v1`.
//! - No model named: `GET /v1/models`; exactly one → that one; several → the one loaded if
//!   exactly one is (Ollama's `GET /api/ps`, LM Studio's `GET /api/v0/models`); else an error
//!   listing them.
//!
//! A URL given with credentials (`http://user:pass@host`, in the flag or `OLLAMA_HOST`) keeps
//! them only for the requests ([`http::take_credentials`]): every URL here has none.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value as J;

use super::openai::{ApiKey, excerpt};
use crate::http::{self, Transport};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Ollama,
    LmStudio,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Ollama => "Ollama",
            Server::LmStudio => "LM Studio",
        }
    }

    /// What to do when nothing answers.
    fn start_hint(self) -> &'static str {
        match self {
            Server::Ollama => {
                "is Ollama running (`ollama serve`), and do OLLAMA_HOST / --openai-base-url point at it?"
            }
            Server::LmStudio => {
                "is LM Studio's server running (Developer tab > Start Server, or `lms server start`), and does --openai-base-url point at it?"
            }
        }
    }
}

/// Ollama's default port.
pub const OLLAMA_PORT: u16 = 11434;

/// The URL an `OLLAMA_HOST` value stands for, read as Ollama reads it.
pub fn ollama_host_url(value: &str) -> String {
    let v = value.trim().trim_matches(['"', '\'']).trim();
    let (scheme, rest, default_port) = match v.split_once("://") {
        Some(("https", rest)) => ("https", rest, "443"),
        Some(("http", rest)) => ("http", rest, "80"),
        Some((scheme, rest)) => (scheme, rest, "11434"),
        None => ("http", v, "11434"),
    };
    let hostport = rest.trim_end_matches('/');
    let (hostport, path) = match hostport.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (hostport, String::new()),
    };
    // [v6]:port, host:port, host, or nothing.
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        match inner.split_once(']') {
            Some((h, p)) => (
                format!("[{h}]"),
                p.strip_prefix(':').unwrap_or(default_port).to_string(),
            ),
            None => ("127.0.0.1".to_string(), default_port.to_string()),
        }
    } else if hostport.matches(':').count() == 1 {
        let (h, p) = hostport.split_once(':').unwrap_or((hostport, default_port));
        let h = if h.is_empty() { "127.0.0.1" } else { h };
        (h.to_string(), p.to_string())
    } else if hostport.matches(':').count() > 1 {
        (format!("[{hostport}]"), default_port.to_string())
    } else if hostport.is_empty() {
        ("127.0.0.1".to_string(), default_port.to_string())
    } else {
        (hostport.to_string(), default_port.to_string())
    };
    let port = match port.parse::<u16>() {
        Ok(p) => p.to_string(),
        Err(_) => default_port.to_string(),
    };
    format!("{scheme}://{host}:{port}{path}")
}

/// Ollama's root URL (no `/v1`): the flag, else `OLLAMA_HOST`, else the default; credentials
/// taken out.
pub fn ollama_root(flag: Option<&str>) -> String {
    let url = match flag.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => match std::env::var("OLLAMA_HOST") {
            Ok(v) if !v.trim().is_empty() => ollama_host_url(&v),
            _ => format!("http://127.0.0.1:{OLLAMA_PORT}"),
        },
    };
    native_root(&http::take_credentials(&url))
}

/// A URL with any trailing `/` and `/v1` taken off (Ollama's native API sits at the root).
pub fn native_root(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    u.strip_suffix("/v1").unwrap_or(u).to_string()
}

/// LM Studio's OpenAI-compatible base URL: the flag (with `/v1` added to a bare host), else
/// `http://127.0.0.1:1234/v1`; credentials taken out.
pub fn lmstudio_base(flag: Option<&str>) -> String {
    match flag.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            let f = http::take_credentials(f.trim_end_matches('/'));
            let f = f.as_str();
            let has_path = f
                .split_once("://")
                .map_or(f, |(_, rest)| rest)
                .contains('/');
            if has_path {
                f.to_string()
            } else {
                format!("{f}/v1")
            }
        }
        None => "http://127.0.0.1:1234/v1".to_string(),
    }
}

/// The `(host, port)` of a URL (port from the scheme when not written).
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let hostport = rest.split('/').next()?;
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(inner) = hostport.strip_prefix('[') {
        let (h, p) = inner.split_once(']')?;
        let port = p
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return Some((h.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((hostport.to_string(), default)),
    }
}

/// Is the server behind an OpenAI-style `base_url` an Ollama? Port 11434 says so at once;
/// otherwise `GET ROOT/api/version` must answer `{"version": ...}` within `timeout`, the
/// endpoint's own per-request timeout (`--openai-timeout`): a server too slow to answer that
/// in time would time out on every chat request as well, and a fixed shorter wait took a busy
/// Ollama for an ordinary endpoint. No key is sent.
pub fn is_ollama(base_url: &str, timeout: Duration) -> bool {
    if host_port(base_url).is_some_and(|(_, p)| p == OLLAMA_PORT) {
        return true;
    }
    let url = format!("{}/api/version", native_root(base_url));
    match http::get(&url, None, timeout) {
        Ok(r) if r.status == 200 => serde_json::from_str::<J>(&r.body)
            .ok()
            .and_then(|v| v.get("version").map(|v| v.is_string()))
            .unwrap_or(false),
        _ => false,
    }
}

/// GET a JSON document from a server, with errors that say what to check.
fn get_json(server: Server, url: &str, key: Option<&ApiKey>, timeout: Duration) -> Result<J> {
    match http::get(url, key.map(ApiKey::secret), timeout) {
        Ok(r) if r.status == 200 => serde_json::from_str(&r.body).map_err(|_| {
            anyhow!(
                "{url} answered with a body that is not JSON: {}",
                excerpt(&r.body)
            )
        }),
        Ok(r) if r.status == 401 || r.status == 403 => bail!(
            "{url} refused the request (HTTP {}): the server wants an API key; name the variable holding it with --openai-api-key-env",
            r.status
        ),
        Ok(r) => bail!("{url} answered HTTP {}: {}", r.status, excerpt(&r.body)),
        Err(Transport::Connect { url, detail }) => bail!(
            "cannot connect to {} at {url} ({detail}): {}",
            server.name(),
            server.start_hint()
        ),
        Err(e) => bail!("{e}"),
    }
}

/// The model ids `GET {base_v1}/models` lists.
pub fn list_models(
    server: Server,
    base_v1: &str,
    key: Option<&ApiKey>,
    timeout: Duration,
) -> Result<Vec<String>> {
    let url = format!("{base_v1}/models");
    let v = get_json(server, &url, key, timeout)?;
    let data = v
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| anyhow!("{url}: no `data` list in {}", excerpt(&v.to_string())))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .collect())
}

/// The models the server has in memory now (Ollama's `/api/ps`; LM Studio's `/api/v0/models`
/// with `state: loaded`); None when the server does not say.
fn loaded_models(
    server: Server,
    base_v1: &str,
    key: Option<&ApiKey>,
    timeout: Duration,
) -> Option<Vec<String>> {
    let root = native_root(base_v1);
    match server {
        Server::Ollama => {
            let v = get_json(server, &format!("{root}/api/ps"), key, timeout).ok()?;
            Some(
                v.get("models")?
                    .as_array()?
                    .iter()
                    .filter_map(|m| {
                        m.get("model")
                            .or(m.get("name"))
                            .and_then(|n| n.as_str())
                            .map(str::to_string)
                    })
                    .collect(),
            )
        }
        Server::LmStudio => {
            let v = get_json(server, &format!("{root}/api/v0/models"), key, timeout).ok()?;
            Some(
                v.get("data")?
                    .as_array()?
                    .iter()
                    .filter(|m| m.get("state").and_then(|s| s.as_str()) == Some("loaded"))
                    .filter(|m| {
                        !matches!(m.get("type").and_then(|t| t.as_str()), Some("embeddings"))
                    })
                    .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
                    .collect(),
            )
        }
    }
}

/// The model to use: `named` when given (for Ollama, checked against what the server has, the
/// tag defaulting to `latest`), else the only model listed, else the only one loaded. Returns
/// it with a note saying how it was chosen.
pub fn pick_model(
    server: Server,
    base_v1: &str,
    named: Option<&str>,
    key: Option<&ApiKey>,
    timeout: Duration,
) -> Result<(String, String)> {
    let models = list_models(server, base_v1, key, timeout)?;
    if let Some(name) = named.map(str::trim).filter(|n| !n.is_empty()) {
        if server == Server::Ollama && !models.is_empty() {
            let with_tag = if name.rsplit('/').next().is_some_and(|l| l.contains(':')) {
                name.to_string()
            } else {
                format!("{name}:latest")
            };
            if !models
                .iter()
                .any(|m| m.eq_ignore_ascii_case(name) || m.eq_ignore_ascii_case(&with_tag))
            {
                bail!(
                    "Ollama at {} has no model `{name}`: `ollama pull {name}`, or use one it has: {}",
                    native_root(base_v1),
                    models.join(", ")
                );
            }
        }
        return Ok((name.to_string(), String::new()));
    }
    match models.len() {
        1 => {
            return Ok((
                models[0].clone(),
                format!("the only model {} lists", server.name()),
            ));
        }
        0 => bail!(
            "{} at {base_v1} lists no model: {}",
            server.name(),
            match server {
                Server::Ollama => "`ollama pull qwen2.5:7b` (for example), then run again",
                Server::LmStudio => "load one (`lms load MODEL` or the app), then run again",
            }
        ),
        _ => {}
    }
    let loaded = loaded_models(server, base_v1, key, timeout).unwrap_or_default();
    if loaded.len() == 1 {
        return Ok((
            loaded[0].clone(),
            format!(
                "the model {} has loaded ({} listed)",
                server.name(),
                models.len()
            ),
        ));
    }
    bail!(
        "{} at {base_v1} has {} models{}; name one with --model (compare: {}:MODEL):\n  {}",
        server.name(),
        models.len(),
        if loaded.is_empty() {
            " and none loaded".to_string()
        } else {
            format!(" and {} loaded", loaded.len())
        },
        match server {
            Server::Ollama => "ollama",
            Server::LmStudio => "lmstudio",
        },
        models.join("\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_is_read_as_ollama_reads_it() {
        for (v, want) in [
            ("", "http://127.0.0.1:11434"),
            ("0.0.0.0", "http://0.0.0.0:11434"),
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            (":9000", "http://127.0.0.1:9000"),
            ("example.com", "http://example.com:11434"),
            ("http://example.com", "http://example.com:80"),
            ("https://example.com/", "https://example.com:443"),
            (
                "https://example.com:8443/ollama",
                "https://example.com:8443/ollama",
            ),
            ("\"example.org:11434\"", "http://example.org:11434"),
            ("[::1]:11500", "http://[::1]:11500"),
            ("::1", "http://[::1]:11434"),
            ("host:notaport", "http://host:11434"),
        ] {
            assert_eq!(ollama_host_url(v), want, "{v:?}");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(native_root("http://h:11434/v1/"), "http://h:11434");
        assert_eq!(native_root("http://h:11434"), "http://h:11434");
        assert_eq!(lmstudio_base(None), "http://127.0.0.1:1234/v1");
        assert_eq!(lmstudio_base(Some("http://h:1234")), "http://h:1234/v1");
        assert_eq!(lmstudio_base(Some("http://h:1234/v1/")), "http://h:1234/v1");
        assert!(host_port("http://127.0.0.1:11434/v1").is_some_and(|(_, p)| p == 11434));
        assert_eq!(
            host_port("https://api.example.com/v1"),
            Some(("api.example.com".into(), 443))
        );
    }
}
