//! Every network call lsmtune makes goes through this module: downloads from the Hugging Face
//! hub (its `resolve` protocol spoken here, everything the hub answers validated before it names
//! a file, into hf-hub's cache layout) and, for the OpenAI-compatible
//! backend, Ollama's native API and the local servers' model lists, JSON over HTTP (ureq). Nothing here prints or stores credentials; errors name the
//! host, the path and the status, never a header value.
//!
//! Secrets are kept apart here too. An API key ([`register_secret`]) is replaced by `[redacted]`
//! in every reply body, whether the server wrote it literally or JSON-escaped (`\/`, `\uXXXX`)
//! or percent-encoded, so decoding a body can never bring it back; [`redact`] and
//! [`redact_json`] apply the same to any text or JSON before it is written. Credentials written
//! into an endpoint URL (`http://user:pass@host/v1`) are taken out of it where the URL enters
//! ([`take_credentials`]): the URL every other module holds, shows and stores has none, and the
//! credentials go back only into the requests sent to that same origin (HTTP Basic
//! authentication, unless a bearer key is sent).
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
    let cache = Cache::new(hf_cache.to_path_buf());
    let mut d = Download {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        repo,
        file,
        token: None,
        home: String::new(),
    };
    check_ids(repo, file).map_err(|e| d.other(e))?;
    if let Some(p) = cache.model(repo.to_string()).get(file) {
        return Ok(p);
    }
    d.token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| cache.token());
    d.home = origin(&d.endpoint);
    let url = format!("{}/{repo}/resolve/main/{file}", d.endpoint);
    let head = d.send(&url, Some("bytes=0-0"))?;
    let (commit, etag) = blob_names(&head).map_err(|e| d.other(e))?;
    let body = d.follow(&url, head)?;
    let repo_dir = hf_cache.join(format!("models--{}", repo.replace('/', "--")));
    let blobs = repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| d.other(format!("{}: {e}", blobs.display())))?;
    let part = blobs.join(format!("{etag}.incomplete"));
    write_part(body, &part, file).map_err(|e| d.other(e))?;
    let blob = blobs.join(&etag);
    std::fs::rename(&part, &blob).map_err(|e| d.other(format!("{}: {e}", blob.display())))?;
    link_snapshot(&repo_dir, &commit, file, &etag).map_err(|e| d.other(e))
}

/// One file being downloaded from a hub: where from, and the token that goes only to the
/// endpoint's own origin (`home`).
struct Download<'a> {
    endpoint: String,
    repo: &'a str,
    file: &'a str,
    token: Option<String>,
    home: String,
}

/// A repo id must be ORG/REPO and a file a relative path, each part of letters, digits, `-`,
/// `_`, `.` and `+` (never `.` or `..`).
fn check_ids(repo: &str, file: &str) -> Result<(), String> {
    let safe_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
    };
    if repo.split('/').count() != 2 || !repo.split('/').all(safe_part) {
        return Err(format!("`{repo}` is not an ORG/REPO id"));
    }
    if file.starts_with('/') || !file.split('/').all(safe_part) {
        return Err(format!("`{file}` is not a file name inside a repo"));
    }
    Ok(())
}

/// The commit id (40 hex digits) and blob name (a plain token) a hub's first answer gives, or
/// why they cannot name files.
fn blob_names(head: &ureq::Response) -> Result<(String, String), String> {
    let commit = head
        .header("X-Repo-Commit")
        .unwrap_or("")
        .trim()
        .to_string();
    if commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "the hub answered a commit id that is not 40 hex digits ({:?}); nothing was written",
            commit.chars().take(80).collect::<String>()
        ));
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
        return Err(format!(
            "the hub answered a blob name (ETag) that is not a plain token ({:?}); nothing was written",
            etag.chars().take(80).collect::<String>()
        ));
    }
    Ok((commit, etag))
}

impl Download<'_> {
    fn other(&self, detail: String) -> DownloadError {
        DownloadError::Other {
            endpoint: self.endpoint.clone(),
            repo: self.repo.to_string(),
            file: self.file.to_string(),
            detail,
        }
    }

    /// GET `url` (a byte `range` of it), redirects not followed, the token sent only to the
    /// endpoint's origin; an answer outside 200..=399 is its typed error.
    fn send(&self, url: &str, range: Option<&str>) -> Result<ureq::Response, DownloadError> {
        let b = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(std::time::Duration::from_secs(10))
            .timeout_read(std::time::Duration::from_secs(60))
            .user_agent(concat!("lsmtune/", env!("CARGO_PKG_VERSION")));
        let mut req = with_proxy(b, url).build().get(url);
        let home = origin(url) == self.home;
        if let Some(t) = self.token.as_deref().filter(|_| home) {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(r) = range {
            req = req.set("Range", r);
        }
        tracing::debug!(
            "GET {url}{}{}",
            range.map(|r| format!(" ({r})")).unwrap_or_default(),
            if self.token.is_some() && !home {
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
                        endpoint: self.endpoint.clone(),
                        repo: self.repo.to_string(),
                        file: self.file.to_string(),
                    }),
                    401 | 403 => Err(DownloadError::Denied {
                        endpoint: self.endpoint.clone(),
                        repo: self.repo.to_string(),
                        file: self.file.to_string(),
                        status,
                    }),
                    _ => Err(DownloadError::Status {
                        endpoint: self.endpoint.clone(),
                        repo: self.repo.to_string(),
                        file: self.file.to_string(),
                        status,
                    }),
                }
            }
            Err(ureq::Error::Transport(t)) => Err(DownloadError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: t.kind().to_string(),
            }),
        }
    }

    /// The file's body: from `url`, whose first answer was `head`, following redirects by
    /// hand (at most five), so the token stays with the endpoint's origin.
    fn follow(&self, url: &str, head: ureq::Response) -> Result<ureq::Response, DownloadError> {
        let mut at = if (300..400).contains(&head.status()) {
            redirect(url, &head).map_err(|e| self.other(e))?
        } else {
            url.to_string()
        };
        drop(head);
        let mut hops = 0;
        loop {
            let r = self.send(&at, None)?;
            if !(300..400).contains(&r.status()) {
                return Ok(r);
            }
            hops += 1;
            if hops > 5 {
                return Err(self.other("more than 5 redirects".into()));
            }
            at = redirect(&at, &r).map_err(|e| self.other(e))?;
        }
    }
}

/// Stream `body` into `part` (synced), with a progress bar named `file` on a terminal; a body
/// shorter than its Content-Length is removed and refused.
fn write_part(body: ureq::Response, part: &Path, file: &str) -> Result<(), String> {
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
            std::fs::File::create(part).map_err(|e| format!("{}: {e}", part.display()))?;
        let mut reader = body.into_reader();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf)
                .map_err(|e| format!("reading the download: {e}"))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut out, &buf[..n])
                .map_err(|e| format!("{}: {e}", part.display()))?;
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        }
        out.sync_all()
            .map_err(|e| format!("{}: {e}", part.display()))?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let got = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if total.is_some_and(|t| t != got) {
        let _ = std::fs::remove_file(part);
        return Err(format!(
            "the download was cut short ({got} of {} bytes)",
            total.unwrap_or(0)
        ));
    }
    Ok(())
}

/// hf-hub's layout around a stored blob: `snapshots/COMMIT/FILE` linking to `blobs/ETAG`, and
/// `refs/main` naming the commit. Returns the link.
fn link_snapshot(repo_dir: &Path, commit: &str, file: &str, etag: &str) -> Result<PathBuf, String> {
    let link = repo_dir.join("snapshots").join(commit).join(file);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let depth = file.split('/').count() + 1;
    let target = Path::new(&"../".repeat(depth)).join("blobs").join(etag);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    let refs = repo_dir.join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| format!("{}: {e}", refs.display()))?;
    std::fs::write(refs.join("main"), commit).map_err(|e| format!("{}: {e}", refs.display()))?;
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
        .post(&with_credentials(url))
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
    let url = shown_url(url, key);
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

/// The URL as errors and logs show it: a key someone put in it, and any userinfo, taken out.
fn shown_url(url: &str, bearer: Option<&str>) -> String {
    let url = without_userinfo(url);
    match bearer.filter(|k| !k.is_empty()) {
        Some(k) => url.replace(k, "[redacted]"),
        None => url,
    }
}

/// A short, single-line excerpt of a body for an error message, secrets redacted.
pub fn excerpt(body: &str) -> String {
    let body = redact(body);
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

/// A reply or failure with every copy of the key (and of every registered secret) replaced,
/// however the server spelled it: a server may echo the Authorization header in an error body,
/// as is or JSON-escaped, which would then reach stderr, the journal and the report once the
/// body is decoded.
fn redacted(r: Result<Reply, Transport>, key: Option<&str>) -> Result<Reply, Transport> {
    let mut keys = secrets();
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        keys.push(k.to_string());
    }
    let clean = |s: String| {
        let mut s = s;
        for k in &keys {
            if let Some(c) = redact_key(&s, k) {
                s = c;
            }
        }
        s
    };
    let shown = |s: String| without_userinfo(&clean(s));
    match r {
        Ok(mut reply) => {
            reply.body = clean(reply.body);
            Ok(reply)
        }
        Err(Transport::Connect { url, detail }) => Err(Transport::Connect {
            url: shown(url),
            detail: shown(detail),
        }),
        Err(Transport::Other { url, detail }) => Err(Transport::Other {
            url: shown(url),
            detail: shown(detail),
        }),
        Err(Transport::Timeout { url, seconds }) => Err(Transport::Timeout {
            url: shown(url),
            seconds,
        }),
    }
}

/// Secrets that must never be printed or stored: API keys and the credentials of endpoint
/// URLs, as registered.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Credentials taken out of endpoint URLs, by origin (`scheme://host:port`, lowercased).
static CREDENTIALS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Shorter secrets are not redacted in text at large (every occurrence of a two-letter password
/// would be); the URL and the header that carry them never show them anyway.
const MIN_REDACTED_LEN: usize = 8;

/// Remember `secret` (an API key, a URL's password) so that [`redact`] and every reply body
/// replace it from now on. Secrets shorter than 8 characters are only kept out of URLs.
pub fn register_secret(secret: &str) {
    if secret.chars().count() < MIN_REDACTED_LEN {
        return;
    }
    if let Ok(mut s) = SECRETS.lock()
        && !s.iter().any(|k| k == secret)
    {
        s.push(secret.to_string());
    }
}

fn secrets() -> Vec<String> {
    SECRETS.lock().map(|s| s.clone()).unwrap_or_default()
}

/// `text` with every registered secret replaced by `[redacted]`, written literally,
/// JSON-escaped (`\/`, `\u0073`, surrogate pairs) or percent-encoded, and with the userinfo of
/// any URL in it taken out.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let keys = secrets();
    let mut out = std::borrow::Cow::Borrowed(text);
    for key in &keys {
        if let Some(clean) = redact_key(&out, key) {
            out = std::borrow::Cow::Owned(clean);
        }
    }
    match strip_userinfo_in(&out) {
        Some(clean) => std::borrow::Cow::Owned(clean),
        None => out,
    }
}

/// Every string of a JSON value (not its object keys: those are field names) passed through
/// [`redact`]: run before a record is serialized, so the JSON stays valid whatever the secret.
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = redact(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// `text` with every spelling of `key` replaced, or None when it holds none.
fn redact_key(text: &str, key: &str) -> Option<String> {
    let chars: Vec<char> = key.chars().collect();
    let first = *chars.first()?;
    let may_hold = text.contains(key) || text.contains('\\') || text.contains('%');
    if !may_hold {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        let here = &bytes[i..];
        let candidate = matches!(here[0], b'\\' | b'%') || text[i..].starts_with(first);
        if candidate && let Some(n) = spelled_chars(here, &chars) {
            out.push_str("[redacted]");
            changed = true;
            i += n;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
        out.push(c);
        i += c.len_utf8().max(1);
    }
    changed.then_some(out)
}

/// The bytes the key's `chars` take at the start of `s` when every character of it is there,
/// each literally or escaped (trying both where a character could be either, as a backslash).
fn spelled_chars(s: &[u8], chars: &[char]) -> Option<usize> {
    let Some((&c, rest)) = chars.split_first() else {
        return Some(0);
    };
    let mut utf8 = [0u8; 4];
    let lit = c.encode_utf8(&mut utf8).as_bytes();
    let literal = s.starts_with(lit).then_some(lit.len());
    [escaped_char(s, c), literal]
        .into_iter()
        .flatten()
        .find_map(|n| Some(n + spelled_chars(&s[n..], rest)?))
}

/// The bytes one character `c` takes at the start of `s` as a JSON escape or as `%XX`
/// (percent-encoded UTF-8).
fn escaped_char(s: &[u8], c: char) -> Option<usize> {
    let mut utf8 = [0u8; 4];
    let lit = c.encode_utf8(&mut utf8).as_bytes();
    let hex = |b: &[u8]| -> Option<u32> {
        let t = std::str::from_utf8(b).ok()?;
        u32::from_str_radix(t, 16).ok()
    };
    match s.first()? {
        b'%' => {
            let mut at = 0;
            for &want in lit {
                let h = s.get(at..at + 3)?;
                if h[0] != b'%' || hex(&h[1..])? != u32::from(want) {
                    return None;
                }
                at += 3;
            }
            Some(at)
        }
        b'\\' => {
            let simple = match *s.get(1)? {
                b'/' => Some('/'),
                b'\\' => Some('\\'),
                b'"' => Some('"'),
                b'b' => Some('\u{8}'),
                b'f' => Some('\u{c}'),
                b'n' => Some('\n'),
                b'r' => Some('\r'),
                b't' => Some('\t'),
                _ => None,
            };
            if let Some(d) = simple {
                return (d == c).then_some(2);
            }
            if s[1] != b'u' {
                return None;
            }
            let unit = hex(s.get(2..6)?)?;
            if (0xD800..0xDC00).contains(&unit) {
                // A surrogate pair: \uD83D\uDE00.
                let low = s.get(6..12)?;
                if &low[..2] != b"\\u" {
                    return None;
                }
                let low = hex(&low[2..])?;
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low.checked_sub(0xDC00)?);
                return (char::from_u32(code)? == c).then_some(12);
            }
            (char::from_u32(unit)? == c).then_some(6)
        }
        _ => None,
    }
}

/// Where the userinfo of the URL starting at `scheme_end` (just past `://`) ends: the byte
/// after its `@`, when the authority has one.
fn userinfo_end(s: &str, scheme_end: usize) -> Option<usize> {
    let rest = &s[scheme_end..];
    let authority_len = rest
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..authority_len]
        .rfind('@')
        .map(|at| scheme_end + at + 1)
}

/// `text` with the userinfo of every `scheme://user:pass@host` in it taken out, or None when it
/// has none.
fn strip_userinfo_in(text: &str) -> Option<String> {
    if !text.contains("://") || !text.contains('@') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let after = at + 3;
        out.push_str(&rest[..after]);
        match userinfo_end(rest, after) {
            Some(end) => {
                changed = true;
                rest = &rest[end..];
            }
            None => rest = &rest[after..],
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// A URL (or any text) as it may be shown or stored: the userinfo of every URL in it taken
/// out (`http://user:pass@host/v1` → `http://host/v1`).
pub fn without_userinfo(text: &str) -> String {
    strip_userinfo_in(text).unwrap_or_else(|| text.to_string())
}

/// An endpoint URL as the user wrote it → the URL the program keeps: its userinfo taken out,
/// and remembered (with its password registered as a secret) so that requests to the same
/// origin carry it again ([`with_credentials`]).
pub fn take_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let Some(end) = userinfo_end(url, scheme_end) else {
        return url.to_string();
    };
    let userinfo = &url[scheme_end..end - 1];
    let bare = format!("{}{}", &url[..scheme_end], &url[end..]);
    register_secret(userinfo);
    if let Some((_, password)) = userinfo.split_once(':') {
        register_secret(password);
    }
    if let Ok(mut c) = CREDENTIALS.lock() {
        let o = origin(&bare);
        c.retain(|(k, _)| *k != o);
        c.push((o, userinfo.to_string()));
    }
    bare
}

/// The URL a request goes to: the credentials [`take_credentials`] took out of a URL of the
/// same origin put back in, so ureq sends them (HTTP Basic, unless a bearer key is set).
fn with_credentials(url: &str) -> String {
    let o = origin(url);
    let found = CREDENTIALS.lock().ok().and_then(|c| {
        c.iter()
            .find(|(k, _)| *k == o)
            .map(|(_, userinfo)| userinfo.clone())
    });
    match (found, url.find("://")) {
        (Some(userinfo), Some(at)) if userinfo_end(url, at + 3).is_none() => {
            format!("{}{userinfo}@{}", &url[..at + 3], &url[at + 3..])
        }
        _ => url.to_string(),
    }
}

/// GET `url` and return the reply, any status (a model list, a server's version). `bearer` as
/// in [`post_json`].
pub fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Reply, Transport> {
    let mut req = agent(url, timeout).get(&with_credentials(url));
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

#[cfg(test)]
mod secret_tests {
    use super::*;

    const KEY: &str = "sk-abc/def+ghi\"jk\\lm";

    #[test]
    fn a_key_is_found_however_a_server_spelled_it() {
        let escaped_slash = KEY
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('/', "\\/");
        let unicode: String = KEY
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        let percent: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
        for (how, spelled) in [
            ("literal", KEY.to_string()),
            ("\\/", escaped_slash),
            ("\\uXXXX", unicode),
            ("%XX", percent),
        ] {
            let body = format!(r#"{{"error": {{"message": "bad key: Bearer {spelled} (sent)"}}}}"#);
            let clean = redact_key(&body, KEY).unwrap_or_else(|| panic!("{how}: not found"));
            assert!(clean.contains("Bearer [redacted] (sent)"), "{how}: {clean}");
        }
        // A character outside the BMP as a surrogate pair; nothing else is touched.
        let key = "sk-\u{1F600}-0123456789";
        assert_eq!(
            redact_key(r#"a \ud83d\ude00 "sk-\uD83D\uDE00-0123456789" b"#, key).unwrap(),
            r#"a \ud83d\ude00 "[redacted]" b"#
        );
        assert_eq!(redact_key("sk-abc\\/de", KEY), None);
        assert_eq!(redact_key("nothing here", KEY), None);
    }

    #[test]
    fn registered_secrets_leave_decoded_json_and_urls_in_text() {
        register_secret("sk-registered-0123456789");
        register_secret("short");
        let mut v = serde_json::json!({
            "reasoning": "my key is sk-registered-0123456789",
            "nested": ["sk-registered-\\u0030123456789", {"short": "short stays"}],
            "url": "http://user:pw@host:1/v1/chat"
        });
        redact_json(&mut v);
        assert_eq!(v["reasoning"], "my key is [redacted]");
        assert_eq!(v["nested"][0], "[redacted]");
        assert_eq!(v["nested"][1]["short"], "short stays");
        assert_eq!(v["url"], "http://host:1/v1/chat");
    }

    #[test]
    fn credentials_leave_the_url_and_come_back_only_for_its_origin() {
        let bare = take_credentials("http://alice:pw-0123456789@127.0.0.1:9/v1");
        assert_eq!(bare, "http://127.0.0.1:9/v1");
        assert_eq!(
            with_credentials("http://127.0.0.1:9/v1/chat/completions"),
            "http://alice:pw-0123456789@127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            with_credentials("http://127.0.0.1:10/v1"),
            "http://127.0.0.1:10/v1"
        );
        assert_eq!(redact("said pw-0123456789"), "said [redacted]");
        assert_eq!(
            without_userinfo("see `ftp://u:p@h/x` and http://h2/y@z"),
            "see `ftp://h/x` and http://h2/y@z"
        );
        assert_eq!(take_credentials("http://h:1/v1"), "http://h:1/v1");
    }
}
