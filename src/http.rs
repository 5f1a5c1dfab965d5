//! Every network call lsmtune makes goes through this module: downloads from the Hugging Face
//! hub (its `resolve` protocol spoken here, everything the hub answers validated before it names
//! a file, into hf-hub's cache layout) and, for the OpenAI-compatible
//! backend, Ollama's native API and the local servers' model lists, JSON over HTTP (ureq). Nothing here prints or stores credentials; errors name the
//! host, the path and the status, never a header value.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use hf_hub::Cache;

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

static DOWNLOAD_BARS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether downloads draw a progress bar on a terminal (off with `-q`).
pub fn show_download_bars(on: bool) {
    DOWNLOAD_BARS.store(on, Ordering::Relaxed);
}

/// Download one file of a model repo into the Hugging Face cache whose hub folder is `hf_cache`
/// (`.../huggingface/hub`), or return the cached copy. A progress bar is drawn on a terminal.
/// The token comes from `HF_TOKEN` or the cache's token file; it is only sent, never shown.
///
/// The hub's `resolve` protocol is spoken here rather than by hf-hub's client, because what a
/// hub answers decides file names: the commit id (`X-Repo-Commit`) must be 40 hex digits and the
/// blob name (`X-Linked-Etag` or `ETag`) a plain token of letters, digits, `-` and `_`, or the
/// download stops before any file is touched (hf-hub 0.4.3 used an ETag of `"/some/path"` as a
/// path to write, and a commit of `../..` escaped the cache). Redirects are followed by hand, at
/// most five, and the token goes only to the endpoint's own origin, never to a host a redirect
/// names. The layout left is hf-hub's (`blobs/ETAG`, `snapshots/COMMIT/FILE` linking to it,
/// `refs/main`), so hf-hub's cache lookups and other tools find the files.
pub fn hf_download(
    endpoint: &str,
    hf_cache: &Path,
    repo: &str,
    file: &str,
) -> Result<PathBuf, DownloadError> {
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let other = |detail: String| DownloadError::Other {
        endpoint: endpoint.clone(),
        repo: repo.to_string(),
        file: file.to_string(),
        detail,
    };
    let safe_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
    };
    if repo.split('/').count() != 2 || !repo.split('/').all(safe_part) {
        return Err(other(format!("`{repo}` is not an ORG/REPO id")));
    }
    if file.starts_with('/') || !file.split('/').all(safe_part) {
        return Err(other(format!("`{file}` is not a file name inside a repo")));
    }
    let cache = Cache::new(hf_cache.to_path_buf());
    if let Some(p) = cache.model(repo.to_string()).get(file) {
        return Ok(p);
    }
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| cache.token());
    let agent = |url: &str| {
        let b = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(std::time::Duration::from_secs(10))
            .timeout_read(std::time::Duration::from_secs(60))
            .user_agent(concat!("lsmtune/", env!("CARGO_PKG_VERSION")));
        with_proxy(b, url).build()
    };
    let home = origin(&endpoint);
    let send = |url: &str, range: Option<&str>| -> Result<ureq::Response, DownloadError> {
        let mut req = agent(url).get(url);
        if let Some(t) = token.as_deref().filter(|_| origin(url) == home) {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(r) = range {
            req = req.set("Range", r);
        }
        tracing::debug!(
            "GET {url}{}{}",
            range.map(|r| format!(" ({r})")).unwrap_or_default(),
            if token.is_some() && origin(url) != home {
                " (token withheld: another host)"
            } else {
                ""
            }
        );
        match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                tracing::debug!("GET {url} -> HTTP {status}");
                match status {
                    200..=399 => Ok(r),
                    404 => Err(DownloadError::NotFound {
                        endpoint: endpoint.clone(),
                        repo: repo.to_string(),
                        file: file.to_string(),
                    }),
                    401 | 403 => Err(DownloadError::Denied {
                        endpoint: endpoint.clone(),
                        repo: repo.to_string(),
                        file: file.to_string(),
                        status,
                    }),
                    _ => Err(DownloadError::Status {
                        endpoint: endpoint.clone(),
                        repo: repo.to_string(),
                        file: file.to_string(),
                        status,
                    }),
                }
            }
            Err(ureq::Error::Transport(t)) => Err(DownloadError::Unreachable {
                endpoint: endpoint.clone(),
                detail: t.kind().to_string(),
            }),
        }
    };
    let url = format!("{endpoint}/{repo}/resolve/main/{file}");
    let head = send(&url, Some("bytes=0-0"))?;
    let commit = head
        .header("X-Repo-Commit")
        .unwrap_or("")
        .trim()
        .to_string();
    if commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(other(format!(
            "the hub answered a commit id that is not 40 hex digits ({:?}); nothing was written",
            commit.chars().take(80).collect::<String>()
        )));
    }
    let etag = head
        .header("X-Linked-Etag")
        .or_else(|| head.header("ETag"))
        .unwrap_or("")
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string();
    if etag.is_empty()
        || etag.len() > 128
        || !etag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(other(format!(
            "the hub answered a blob name (ETag) that is not a plain token ({:?}); nothing was written",
            etag.chars().take(80).collect::<String>()
        )));
    }
    // Follow redirects by hand: the token stays with the endpoint's origin.
    let mut at = if (300..400).contains(&head.status()) {
        redirect(&url, &head).map_err(other)?
    } else {
        url.clone()
    };
    drop(head);
    let mut hops = 0;
    let body = loop {
        let r = send(&at, None)?;
        if (300..400).contains(&r.status()) {
            hops += 1;
            if hops > 5 {
                return Err(other("more than 5 redirects".into()));
            }
            at = redirect(&at, &r).map_err(other)?;
            continue;
        }
        break r;
    };
    let repo_dir = hf_cache.join(format!("models--{}", repo.replace('/', "--")));
    let blobs = repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| other(format!("{}: {e}", blobs.display())))?;
    let blob = blobs.join(&etag);
    let part = blobs.join(format!("{etag}.incomplete"));
    let total = body
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bar = if std::io::stderr().is_terminal() && DOWNLOAD_BARS.load(Ordering::Relaxed) {
        let b = indicatif::ProgressBar::new(total.unwrap_or(0));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(file.to_string());
        Some(b)
    } else {
        None
    };
    {
        let mut out =
            std::fs::File::create(&part).map_err(|e| other(format!("{}: {e}", part.display())))?;
        let mut reader = body.into_reader();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf)
                .map_err(|e| other(format!("reading the download: {e}")))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut out, &buf[..n])
                .map_err(|e| other(format!("{}: {e}", part.display())))?;
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        }
        out.sync_all()
            .map_err(|e| other(format!("{}: {e}", part.display())))?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let got = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if total.is_some_and(|t| t != got) {
        let _ = std::fs::remove_file(&part);
        return Err(other(format!(
            "the download was cut short ({got} of {} bytes)",
            total.unwrap_or(0)
        )));
    }
    std::fs::rename(&part, &blob).map_err(|e| other(format!("{}: {e}", blob.display())))?;
    let link = repo_dir.join("snapshots").join(&commit).join(file);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(|e| other(format!("{}: {e}", parent.display())))?;
    }
    let depth = file.split('/').count() + 1;
    let target = Path::new(&"../".repeat(depth)).join("blobs").join(&etag);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link)
        .map_err(|e| other(format!("{}: {e}", link.display())))?;
    let refs = repo_dir.join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| other(format!("{}: {e}", refs.display())))?;
    std::fs::write(refs.join("main"), &commit)
        .map_err(|e| other(format!("{}: {e}", refs.display())))?;
    Ok(link)
}

/// `scheme://host[:port]` of a URL (lowercased), the unit the token is bound to.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

/// Where a 3xx points, resolved against the URL that answered it.
fn redirect(from: &str, r: &ureq::Response) -> Result<String, String> {
    let loc = r
        .header("Location")
        .ok_or_else(|| format!("HTTP {} without a Location", r.status()))?
        .trim();
    if loc.starts_with("http://") || loc.starts_with("https://") {
        Ok(loc.to_string())
    } else if loc.starts_with('/') {
        Ok(format!("{}{loc}", origin(from)))
    } else {
        let base = &from[..from.rfind('/').map_or(from.len(), |i| i + 1)];
        Ok(format!("{base}{loc}"))
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
    let mut req = agent(url, timeout)
        .post(url)
        .set("Content-Type", "application/json");
    if let Some(key) = bearer {
        req = req.set("Authorization", &format!("Bearer {key}"));
    }
    let started = std::time::Instant::now();
    let r = redacted(
        answer(url, timeout, req.send_string(&body.to_string())),
        bearer,
    );
    logged("POST", url, bearer, &r, started);
    r
}

/// One debug line per request: method, URL (with the key taken out, should it be in it),
/// status or failure, time.
fn logged(
    method: &str,
    url: &str,
    key: Option<&str>,
    r: &Result<Reply, Transport>,
    started: std::time::Instant,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let url = match key.filter(|k| !k.is_empty()) {
        Some(k) => url.replace(k, "[redacted]"),
        None => url.to_string(),
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    match r {
        Ok(reply) => tracing::debug!(
            "{method} {url} -> HTTP {} ({} bytes) in {ms:.0} ms",
            reply.status,
            reply.body.len()
        ),
        Err(e) => tracing::debug!("{method} {url} -> {e} after {ms:.0} ms"),
    }
}

/// How a chat request is retried, the same for every backend: HTTP 429, 5xx and timeouts are
/// tried again up to `max_retries` times, waiting `backoff` doubled per retry (at most 30 s), or
/// the server's `Retry-After` when that is longer (at most 120 s).
pub struct Retrying<'a> {
    pub max_retries: u32,
    pub backoff: std::time::Duration,
    /// Per attempt.
    pub timeout: std::time::Duration,
    /// Who answers, as notices name it ("the endpoint", "Ollama").
    pub server: &'a str,
    /// Added to the error when every attempt timed out.
    pub timeout_hint: &'a str,
    /// The error when nothing answers at the address.
    pub connect_hint: &'a str,
}

/// What retrying did, for the caller's notices and counters.
#[derive(Debug, Default)]
pub struct Retried {
    pub notices: Vec<String>,
    pub retries: u32,
}

/// The URL as errors and logs show it: a key someone put in it is taken out.
fn shown_url(url: &str, bearer: Option<&str>) -> String {
    match bearer.filter(|k| !k.is_empty()) {
        Some(k) => url.replace(k, "[redacted]"),
        None => url.to_string(),
    }
}

/// A short, single-line excerpt of a body for an error message.
pub fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        s.push_str("...");
    }
    if s.is_empty() { "(empty)".into() } else { s }
}

impl Retrying<'_> {
    /// [`Self::post_json`] with the successful reply's body read as JSON (`Ok(Ok(json))`); a
    /// 2xx whose body is not JSON is an error that shows the body.
    pub fn post_for_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
        hand_back: impl Fn(&Reply) -> bool,
        error_text: impl Fn(&str) -> String,
        log: &mut Retried,
    ) -> anyhow::Result<Result<serde_json::Value, Reply>> {
        match self.post_json(url, bearer, body, hand_back, error_text, log)? {
            Ok(reply) => serde_json::from_str(&reply.body).map(Ok).map_err(|_| {
                anyhow::anyhow!(
                    "{} answered HTTP {} with a body that is not JSON: {}",
                    shown_url(url, bearer),
                    reply.status,
                    excerpt(&reply.body)
                )
            }),
            Err(reply) => Ok(Err(reply)),
        }
    }

    fn wait(&self, attempt: u32) -> std::time::Duration {
        let d = self.backoff.as_secs_f64() * 2f64.powi(attempt as i32);
        std::time::Duration::from_secs_f64(d.min(30.0))
    }

    /// POST `body` until a 2xx (`Ok(Ok(reply))`), a reply the caller must decide on
    /// (`Ok(Err(reply))`: a 4xx other than 429, or a 5xx `hand_back` claims, such as a server
    /// refusing the response format), or an error once the retries are spent. `error_text`
    /// turns a body into the server's own words for that error.
    pub fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
        hand_back: impl Fn(&Reply) -> bool,
        error_text: impl Fn(&str) -> String,
        log: &mut Retried,
    ) -> anyhow::Result<Result<Reply, Reply>> {
        let shown = shown_url(url, bearer);
        let mut attempt = 0u32;
        loop {
            let wait = match post_json(url, bearer, body, self.timeout) {
                Ok(r) if (200..300).contains(&r.status) => return Ok(Ok(r)),
                Ok(r) if r.status >= 500 && hand_back(&r) => return Ok(Err(r)),
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    if attempt >= self.max_retries {
                        anyhow::bail!(
                            "{shown} answered HTTP {} {} times in a row; giving up: {}",
                            r.status,
                            attempt + 1,
                            error_text(&r.body)
                        );
                    }
                    let backoff = self.wait(attempt);
                    let wait = r
                        .retry_after
                        .map(|s| std::time::Duration::from_secs_f64(s.clamp(0.0, 120.0)))
                        .map_or(backoff, |w| w.max(backoff));
                    log.notices.push(format!(
                        "HTTP {} from {}; retrying in {:.1} s",
                        r.status,
                        self.server,
                        wait.as_secs_f64()
                    ));
                    wait
                }
                Ok(r) => return Ok(Err(r)),
                Err(Transport::Timeout { url, seconds }) => {
                    if attempt >= self.max_retries {
                        anyhow::bail!(
                            "no answer from {url} within {seconds:.0} s, {} attempts; {}",
                            attempt + 1,
                            self.timeout_hint
                        );
                    }
                    log.notices
                        .push(format!("no answer within {seconds:.0} s; retrying"));
                    self.wait(attempt)
                }
                Err(Transport::Connect { url, detail }) => {
                    anyhow::bail!("cannot connect to {url} ({detail}): {}", self.connect_hint)
                }
                Err(e @ Transport::Other { .. }) => anyhow::bail!("{e}"),
            };
            tracing::debug!("retrying {shown} in {:.1} s", wait.as_secs_f64());
            attempt += 1;
            log.retries += 1;
            std::thread::sleep(wait);
        }
    }
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
    let mut req = agent(url, timeout).get(url);
    if let Some(key) = bearer {
        req = req.set("Authorization", &format!("Bearer {key}"));
    }
    let started = std::time::Instant::now();
    let r = redacted(answer(url, timeout, req.call()), bearer);
    logged("GET", url, bearer, &r, started);
    r
}

fn agent(url: &str, timeout: std::time::Duration) -> ureq::Agent {
    let b = ureq::AgentBuilder::new()
        .timeout_connect(timeout.min(std::time::Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("lsmtune/", env!("CARGO_PKG_VERSION")));
    with_proxy(b, url).build()
}

/// The proxy `url` should go through, from the environment as curl reads it: `HTTPS_PROXY`
/// (https) or `HTTP_PROXY` (http), else `ALL_PROXY`, lower-case names too; none for loopback
/// hosts or hosts `NO_PROXY` names (`*`, `host`, `.domain` or `domain` for it and its
/// subdomains, with or without `:port`).
pub fn proxy_for(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let get = |k: &str| {
        env(k)
            .or_else(|| env(&k.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("").to_ascii_lowercase()
    } else {
        authority
            .split(':')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    if host == "localhost" || host == "::1" || host.starts_with("127.") {
        return None;
    }
    if let Some(no) = get("NO_PROXY") {
        for pat in no.split(',').map(|p| p.trim().to_ascii_lowercase()) {
            let pat = pat.split(':').next().unwrap_or("").to_string();
            let bare = pat.trim_start_matches('.');
            if pat == "*"
                || (!bare.is_empty() && (host == bare || host.ends_with(&format!(".{bare}"))))
            {
                return None;
            }
        }
    }
    let specific = if scheme.eq_ignore_ascii_case("https") {
        get("HTTPS_PROXY")
    } else {
        get("HTTP_PROXY")
    };
    specific.or_else(|| get("ALL_PROXY"))
}

fn with_proxy(b: ureq::AgentBuilder, url: &str) -> ureq::AgentBuilder {
    match proxy_for(url, &|k| std::env::var(k).ok()).and_then(|p| ureq::Proxy::new(p).ok()) {
        Some(p) => b.proxy(p),
        None => b,
    }
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

#[cfg(test)]
mod proxy_tests {
    use super::proxy_for;

    #[test]
    fn proxies_follow_the_environment_and_no_proxy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("http_proxy", "http://plain:8080"),
            ("NO_PROXY", "internal.example, .corp:443"),
        ]);
        assert_eq!(
            proxy_for("https://api.openai.com/v1", &e).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(
            proxy_for("http://hub.example/x", &e).as_deref(),
            Some("http://plain:8080")
        );
        assert_eq!(proxy_for("https://internal.example/v1", &e), None);
        assert_eq!(proxy_for("https://a.internal.example/v1", &e), None);
        assert_eq!(proxy_for("https://gpu.corp:8443/v1", &e), None);
        assert_eq!(proxy_for("http://127.0.0.1:8080/v1", &e), None);
        assert_eq!(proxy_for("http://localhost:11434", &e), None);
        assert_eq!(proxy_for("http://[::1]:8080/v1", &e), None);
        let all = env(&[("ALL_PROXY", "socks5://s:1080"), ("NO_PROXY", "*")]);
        assert_eq!(proxy_for("https://x.example", &all), None);
        let all = env(&[("ALL_PROXY", "socks5://s:1080")]);
        assert_eq!(
            proxy_for("https://x.example", &all).as_deref(),
            Some("socks5://s:1080")
        );
    }
}
