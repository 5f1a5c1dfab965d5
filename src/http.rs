//! Every network call lsmtune makes goes through this module: downloads from the Hugging Face
//! hub (hf-hub's blocking client, into the standard cache layout) and, for the OpenAI-compatible
//! backend, Ollama's native API and the local servers' model lists, JSON over HTTP (ureq). Nothing here prints or stores credentials; errors name the
//! host, the path and the status, never a header value.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo};

/// The hub endpoint: `HF_ENDPOINT`, else huggingface.co.
pub fn hf_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// Why a hub download failed, in the terms a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "{repo}/{file} does not exist on {endpoint} (HTTP 404): check the repo id and file name"
    )]
    NotFound {
        endpoint: String,
        repo: String,
        file: String,
    },
    #[error(
        "{endpoint} refused {repo}/{file} (HTTP {status}): the repo may be gated or private; accept its licence on the hub and set HF_TOKEN (or run `huggingface-cli login`)"
    )]
    Denied {
        endpoint: String,
        repo: String,
        file: String,
        status: u16,
    },
    #[error("{endpoint} answered HTTP {status} for {repo}/{file}")]
    Status {
        endpoint: String,
        repo: String,
        file: String,
        status: u16,
    },
    #[error(
        "cannot reach {endpoint} ({detail}); on a machine without network use --offline and place the files by hand (see `lsmtune models list`)"
    )]
    Unreachable { endpoint: String, detail: String },
    #[error("download of {repo}/{file} from {endpoint} failed: {detail}")]
    Other {
        endpoint: String,
        repo: String,
        file: String,
        detail: String,
    },
}

/// Download one file of a model repo into the Hugging Face cache whose hub folder is `hf_cache`
/// (`.../huggingface/hub`), or return the cached copy. A progress bar is drawn on a terminal.
/// The token comes from `HF_TOKEN` or the cache's token file; it is only sent, never shown.
pub fn hf_download(
    endpoint: &str,
    hf_cache: &Path,
    repo: &str,
    file: &str,
) -> Result<PathBuf, DownloadError> {
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let cache = Cache::new(hf_cache.to_path_buf());
    if let Some(p) = cache.model(repo.to_string()).get(file) {
        return Ok(p);
    }
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| cache.token());
    let api = ApiBuilder::from_cache(cache)
        .with_endpoint(endpoint.clone())
        .with_token(token)
        .with_retries(3)
        .with_progress(std::io::stderr().is_terminal())
        .with_user_agent("lsmtune", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(|e| DownloadError::Other {
            endpoint: endpoint.clone(),
            repo: repo.to_string(),
            file: file.to_string(),
            detail: e.to_string(),
        })?;
    api.repo(Repo::model(repo.to_string()))
        .download(file)
        .map_err(|e| classify(e, &endpoint, repo, file))
}

fn classify(e: ApiError, endpoint: &str, repo: &str, file: &str) -> DownloadError {
    let (endpoint, repo, file) = (endpoint.to_string(), repo.to_string(), file.to_string());
    let inner = match e {
        ApiError::TooManyRetries(inner) => *inner,
        other => other,
    };
    match inner {
        ApiError::RequestError(err) => match *err {
            ureq::Error::Status(404, _) => DownloadError::NotFound {
                endpoint,
                repo,
                file,
            },
            ureq::Error::Status(status @ (401 | 403), _) => DownloadError::Denied {
                endpoint,
                repo,
                file,
                status,
            },
            ureq::Error::Status(status, _) => DownloadError::Status {
                endpoint,
                repo,
                file,
                status,
            },
            ureq::Error::Transport(t) => DownloadError::Unreachable {
                endpoint,
                detail: t.kind().to_string(),
            },
        },
        other => DownloadError::Other {
            endpoint,
            repo,
            file,
            detail: other.to_string(),
        },
    }
}

/// True when `HF_HUB_OFFLINE` asks for no network (any value but empty, 0, false, no).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            !(v.is_empty() || v == "0" || v == "false" || v == "no")
        })
        .unwrap_or(false)
}

/// An answer from an HTTP endpoint, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one (delta-seconds form, finite, >= 0).
    pub retry_after: Option<f64>,
    pub body: String,
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum Transport {
    #[error("no answer from {url} within {seconds:.0} s")]
    Timeout { url: String, seconds: f64 },
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("talking to {url} failed: {detail}")]
    Other { url: String, detail: String },
}

/// POST a JSON body and return the reply, any status. `bearer` is sent as
/// `Authorization: Bearer ...` and appears nowhere else (not in errors, not in logs).
pub fn post_json(
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
    timeout: std::time::Duration,
) -> Result<Reply, Transport> {
    let mut req = agent(timeout)
        .post(url)
        .set("Content-Type", "application/json");
    if let Some(key) = bearer {
        req = req.set("Authorization", &format!("Bearer {key}"));
    }
    redacted(
        answer(url, timeout, req.send_string(&body.to_string())),
        bearer,
    )
}

/// A reply or failure with every copy of the key replaced: a server may echo the Authorization
/// header in an error body, which would then reach stderr, the journal and the report.
fn redacted(r: Result<Reply, Transport>, key: Option<&str>) -> Result<Reply, Transport> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return r;
    };
    let clean = |s: String| {
        if s.contains(key) {
            s.replace(key, "[redacted]")
        } else {
            s
        }
    };
    match r {
        Ok(mut reply) => {
            reply.body = clean(reply.body);
            Ok(reply)
        }
        Err(Transport::Connect { url, detail }) => Err(Transport::Connect {
            url: clean(url),
            detail: clean(detail),
        }),
        Err(Transport::Other { url, detail }) => Err(Transport::Other {
            url: clean(url),
            detail: clean(detail),
        }),
        Err(Transport::Timeout { url, seconds }) => Err(Transport::Timeout {
            url: clean(url),
            seconds,
        }),
    }
}

/// GET `url` and return the reply, any status (a model list, a server's version). `bearer` as
/// in [`post_json`].
pub fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Reply, Transport> {
    let mut req = agent(timeout).get(url);
    if let Some(key) = bearer {
        req = req.set("Authorization", &format!("Bearer {key}"));
    }
    redacted(answer(url, timeout, req.call()), bearer)
}

fn agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(timeout.min(std::time::Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("lsmtune/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A ureq outcome as a [`Reply`] (any status) or the [`Transport`] failure.
fn answer(
    url: &str,
    timeout: std::time::Duration,
    outcome: Result<ureq::Response, ureq::Error>,
) -> Result<Reply, Transport> {
    let response = match outcome {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            let url = url.to_string();
            let detail = t
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| t.kind().to_string());
            let io_timeout = std::error::Error::source(&t)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some_and(|e| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    )
                });
            return Err(match t.kind() {
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => {
                    Transport::Connect { url, detail }
                }
                _ if io_timeout || detail.contains("timed out") => Transport::Timeout {
                    url,
                    seconds: timeout.as_secs_f64(),
                },
                _ => Transport::Other { url, detail },
            });
        }
    };
    let status = response.status();
    let retry_after = response
        .header("Retry-After")
        .and_then(|v| v.trim().parse::<f64>().ok())
        // A hostile or broken server may send NaN, inf or a negative number: ignored, as an
        // HTTP-date is (the caller's own backoff applies).
        .filter(|s| s.is_finite() && *s >= 0.0);
    let body = response.into_string().map_err(|e| {
        let url = url.to_string();
        if matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) {
            Transport::Timeout {
                url,
                seconds: timeout.as_secs_f64(),
            }
        } else {
            Transport::Other {
                url,
                detail: e.to_string(),
            }
        }
    })?;
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}
