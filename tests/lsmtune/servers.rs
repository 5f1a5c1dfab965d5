//! Talking to Ollama and LM Studio, against fake servers on 127.0.0.1 inside the test: the URL
//! paths asked for, the model found with GET /v1/models (and what is loaded) when none is named,
//! Ollama's native /api/chat with `num_ctx` sized to the conversation and the schema as
//! `format`, an `--openai-base-url` recognised as an Ollama, and full `tune --backend ollama`,
//! `tune --backend openai` (at an Ollama) and `compare --proposers lmstudio,ollama:MODEL` runs.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lsmtune::llm::ollama::{MIN_NUM_CTX, OllamaBackend};
use lsmtune::llm::servers::{self, Server};
use lsmtune::llm::{GenParams, Llm, Message};
use serde_json::{Value as J, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: J,
}

type Handler = dyn Fn(&str, &str, &J) -> (u16, String) + Send + Sync;

struct Fake {
    /// `http://127.0.0.1:PORT`
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
    fn bodies(&self, path: &str) -> Vec<J> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .map(|s| s.body.clone())
            .collect()
    }
}

fn serve(handler: Box<Handler>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handler: Arc<Handler> = Arc::from(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (log, handler) = (log.clone(), handler.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut len, mut auth) = (0usize, None);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or(("", ""));
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "authorization" => auth = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let body: J = serde_json::from_slice(&body).unwrap_or(J::Null);
                let (code, reply) = handler(&method, &path, &body);
                log.lock().unwrap().push(Seen {
                    method,
                    path,
                    auth,
                    body,
                });
                let s = format!(
                    "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(s.as_bytes());
            });
        }
    });
    Fake { url, seen }
}

/// The endpoint timeout the tests give: no loopback reply comes near it, however busy the
/// machine.
const PATIENT: Duration = Duration::from_secs(60);

const PROPOSAL: &str = r#"{"reasoning": "more background jobs for compaction", "changes": [{"max_background_jobs": 4}]}"#;

/// An Ollama holding `models` with `loaded` in memory, a 32k-token model, answering every chat
/// with a proposal; `refuse_schema` answers a schema in `format` as an old Ollama would.
fn ollama(models: &[&str], loaded: &[&str], refuse_schema: bool) -> Fake {
    let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let loaded: Vec<String> = loaded.iter().map(|m| m.to_string()).collect();
    serve(Box::new(move |method, path, body| {
        match (method, path) {
        ("GET", "/api/version") => (200, json!({"version": "0.6.5"}).to_string()),
        ("GET", "/v1/models") => (
            200,
            json!({"object": "list", "data": models.iter().map(|m| json!({"id": m, "object": "model", "owned_by": "library"})).collect::<Vec<_>>()}).to_string(),
        ),
        ("GET", "/api/ps") => (
            200,
            json!({"models": loaded.iter().map(|m| json!({"name": m, "model": m, "size": 1})).collect::<Vec<_>>()}).to_string(),
        ),
        ("POST", "/api/show") => (
            200,
            json!({"details": {"family": "qwen2"}, "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}}).to_string(),
        ),
        ("POST", "/api/chat") => {
            if refuse_schema && body["format"].is_object() {
                return (400, json!({"error": "invalid format: expected \"json\""}).to_string());
            }
            let name = body["model"].as_str().unwrap_or("");
            if !models.iter().any(|m| m == name || *m == format!("{name}:latest")) {
                return (404, json!({"error": format!("model \"{name}\" not found, try pulling it first")}).to_string());
            }
            (
                200,
                json!({"model": name, "created_at": "2025-01-01T00:00:00Z",
                       "message": {"role": "assistant", "content": PROPOSAL},
                       "done": true, "done_reason": "stop", "total_duration": 2_000_000_000u64,
                       "prompt_eval_count": 3000, "prompt_eval_duration": 1_500_000_000u64,
                       "eval_count": 30, "eval_duration": 500_000_000u64})
                .to_string(),
            )
        }
        _ => (404, "404 page not found".to_string()),
    }
    }))
}

/// An LM Studio listing `models`, with `loaded` in memory, answering chat completions.
fn lmstudio(models: &[&str], loaded: &[&str]) -> Fake {
    let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let loaded: Vec<String> = loaded.iter().map(|m| m.to_string()).collect();
    serve(Box::new(move |method, path, body| {
        match (method, path) {
        ("GET", "/v1/models") => (
            200,
            json!({"object": "list", "data": models.iter().map(|m| json!({"id": m, "object": "model"})).collect::<Vec<_>>()}).to_string(),
        ),
        ("GET", "/api/v0/models") => (
            200,
            json!({"object": "list", "data": models.iter().map(|m| json!({
                "id": m, "object": "model", "type": "llm", "compatibility_type": "gguf",
                "state": if loaded.contains(m) { "loaded" } else { "not-loaded" },
                "max_context_length": 32768})).collect::<Vec<_>>()})
            .to_string(),
        ),
        ("POST", "/v1/chat/completions") => (
            200,
            json!({"id": "x", "object": "chat.completion", "model": body["model"],
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": PROPOSAL}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3000, "completion_tokens": 30, "total_tokens": 3030}})
            .to_string(),
        ),
        _ => (404, json!({"error": "Unexpected endpoint or method."}).to_string()),
    }
    }))
}

fn schema() -> J {
    lsmtune::grammar::schema::proposal_schema(
        lsmtune::options::catalog().unwrap(),
        &Default::default(),
    )
}

#[test]
fn the_model_is_found_when_none_is_named() {
    let t = PATIENT;
    // One model: that one.
    let o = ollama(&["qwen2.5:0.5b"], &[], false);
    let (m, how) =
        servers::pick_model(Server::Ollama, &format!("{}/v1", o.url), None, None, t).unwrap();
    assert_eq!(m, "qwen2.5:0.5b");
    assert!(how.contains("only model"), "{how}");
    assert_eq!(o.paths(), ["GET /v1/models"]);
    // Several, one loaded: the loaded one (Ollama's /api/ps).
    let o = ollama(&["qwen2.5:0.5b", "llama3.2:1b"], &["llama3.2:1b"], false);
    let (m, how) =
        servers::pick_model(Server::Ollama, &format!("{}/v1", o.url), None, None, t).unwrap();
    assert_eq!(m, "llama3.2:1b");
    assert!(how.contains("loaded"), "{how}");
    assert_eq!(o.paths(), ["GET /v1/models", "GET /api/ps"]);
    // Several, none loaded: an error listing them.
    let o = ollama(&["qwen2.5:0.5b", "llama3.2:1b"], &[], false);
    let e = servers::pick_model(Server::Ollama, &format!("{}/v1", o.url), None, None, t)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 models") && e.contains("qwen2.5:0.5b") && e.contains("llama3.2:1b"),
        "{e}"
    );
    // Named: checked against the list, the tag defaulting to latest.
    let o = ollama(&["qwen2.5:0.5b", "tiny:latest"], &[], false);
    let base = format!("{}/v1", o.url);
    assert_eq!(
        servers::pick_model(Server::Ollama, &base, Some("tiny"), None, t)
            .unwrap()
            .0,
        "tiny"
    );
    let e = servers::pick_model(Server::Ollama, &base, Some("mistral"), None, t)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ollama pull mistral") && e.contains("qwen2.5:0.5b"),
        "{e}"
    );

    // LM Studio: several listed, one loaded (its /api/v0/models).
    let l = lmstudio(&["qwen2.5-7b-instruct", "llama-3.2-1b"], &["llama-3.2-1b"]);
    let (m, _) =
        servers::pick_model(Server::LmStudio, &format!("{}/v1", l.url), None, None, t).unwrap();
    assert_eq!(m, "llama-3.2-1b");
    assert_eq!(l.paths(), ["GET /v1/models", "GET /api/v0/models"]);

    // Nothing listening: what to start.
    let url = format!("http://{}/v1", common::NOTHING_LISTENS);
    let e = servers::pick_model(Server::Ollama, &url, None, None, t)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot connect to Ollama") && e.contains("ollama serve"),
        "{e}"
    );
    let e = servers::pick_model(Server::LmStudio, &url, None, None, t)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lms server start"), "{e}");
}

#[test]
fn an_ollama_is_recognised_behind_an_openai_url() {
    let o = ollama(&["m"], &[], false);
    assert!(servers::is_ollama(&format!("{}/v1", o.url), PATIENT));
    assert_eq!(o.paths(), ["GET /api/version"]);
    assert!(
        o.seen.lock().unwrap()[0].auth.is_none(),
        "no key on a probe"
    );
    let l = lmstudio(&["m"], &["m"]);
    assert!(!servers::is_ollama(&format!("{}/v1", l.url), PATIENT));
    // Ollama's port says it without asking.
    assert!(servers::is_ollama(
        "http://127.0.0.1:11434/v1",
        Duration::from_millis(1)
    ));
}

/// An Ollama that answers `GET /api/version` after `delay` (busy loading a model, or on a
/// loaded machine).
fn slow_ollama(delay: Duration) -> Fake {
    serve(Box::new(move |method, path, _| {
        if (method, path) == ("GET", "/api/version") {
            std::thread::sleep(delay);
            return (200, json!({"version": "0.6.5"}).to_string());
        }
        (404, "404 page not found".to_string())
    }))
}

/// The probe waits as long as the endpoint's own timeout (once a fixed 3 s, so a slow Ollama
/// was taken for an ordinary endpoint and its prompts cut at its small window), and no longer.
#[test]
fn the_ollama_probe_waits_as_long_as_the_endpoint_timeout() {
    let o = slow_ollama(Duration::from_millis(3500));
    assert!(servers::is_ollama(&format!("{}/v1", o.url), PATIENT));
    // Slower than the endpoint's timeout: not taken for an Ollama (the server's sleep is a
    // lower bound, so this cannot pass by chance).
    let o = slow_ollama(Duration::from_secs(60));
    assert!(!servers::is_ollama(
        &format!("{}/v1", o.url),
        Duration::from_millis(300)
    ));
}

fn conversation(turns: usize) -> Vec<Message> {
    let feedback = "Iteration result: write_buffer_size=67108864 applied; throughput +3.1% \
                    (95% interval -0.4% to +6.5%): not kept. Diagnostics: stalls 0.2%, write \
                    amplification 2.1, 4 L0 files. Propose the next changes.\n"
        .repeat(12);
    let mut m = vec![
        Message::system("You tune RocksDB."),
        Message::user("Machine facts and the option catalog.\n".repeat(150)),
    ];
    for _ in 0..turns {
        m.push(Message::assistant(PROPOSAL));
        m.push(Message::user(feedback.clone()));
    }
    m
}

#[test]
fn ollama_native_chat_sends_num_ctx_for_the_whole_conversation_and_the_schema_as_format() {
    let o = ollama(&["tiny:latest"], &[], false);
    let mut b = OllamaBackend::new(
        &format!("{}/v1", o.url),
        "tiny:latest",
        None,
        PATIENT,
        Some(schema()),
    );
    b.probe_context();
    assert_eq!(b.context_length, Some(32768));
    let params = GenParams {
        max_tokens: 768,
        ..GenParams::default()
    };
    let c = b
        .chat(&conversation(0), None, &params, &mut |_| {})
        .unwrap();
    assert_eq!(c.text, PROPOSAL);
    assert_eq!((c.prompt_tokens, c.completion_tokens), (3000, 30));
    assert!((c.prefill_seconds - 1.5).abs() < 1e-9);
    // Later turns: a conversation well past Ollama's default 2-4k window.
    for turns in [3, 12] {
        b.chat(&conversation(turns), None, &params, &mut |_| {})
            .unwrap();
    }
    assert_eq!(
        o.paths(),
        [
            "POST /api/show",
            "POST /api/chat",
            "POST /api/chat",
            "POST /api/chat"
        ]
    );
    let chats = o.bodies("/api/chat");
    let ctx: Vec<u64> = chats
        .iter()
        .map(|c| c["options"]["num_ctx"].as_u64().unwrap())
        .collect();
    for (body, &n) in chats.iter().zip(&ctx) {
        assert_eq!(body["stream"], false);
        assert_eq!(body["model"], "tiny:latest");
        assert_eq!(body["format"], schema(), "the schema goes as format");
        assert_eq!(body["options"]["num_predict"], 768);
        let msgs = body["messages"].as_array().unwrap();
        let text: usize = msgs
            .iter()
            .map(|m| m["content"].as_str().unwrap().len())
            .sum();
        // Generous: at least one token per 3 bytes of the conversation, plus the reply.
        assert!(n as usize >= text / 3 + 768, "num_ctx {n} for {text} bytes");
        assert!(n as usize >= MIN_NUM_CTX && n <= 32768);
    }
    assert!(
        ctx.windows(2).all(|w| w[0] <= w[1]),
        "never lowered: {ctx:?}"
    );
    assert!(ctx[2] > 4096 * 2, "{ctx:?}");
    // Every message went out (nothing dropped below the model's window).
    assert_eq!(chats[2]["messages"].as_array().unwrap().len(), 2 + 2 * 12);
    assert!(
        b.notices.iter().any(|n| n.contains("raised")),
        "{:?}",
        b.notices
    );

    // A model with a small window: the oldest exchanges are left out, the first turn kept.
    let mut b = OllamaBackend::new(&o.url, "tiny:latest", None, PATIENT, None);
    b.context_length = Some(8192);
    b.chat(&conversation(12), None, &params, &mut |_| {})
        .unwrap();
    let last = o.bodies("/api/chat").pop().unwrap();
    let msgs = last["messages"].as_array().unwrap();
    assert!(msgs.len() < 2 + 2 * 12);
    assert!(
        msgs[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("Machine facts")
    );
    assert_eq!(last["options"]["num_ctx"], 8192);
    assert!(last.get("format").is_none());
    assert!(
        b.notices.iter().any(|n| n.contains("left out")),
        "{:?}",
        b.notices
    );

    // An unknown model: what to pull.
    let mut b = OllamaBackend::new(&o.url, "nope:1b", None, PATIENT, None);
    let e = b
        .chat(&conversation(0), None, &params, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("ollama pull nope:1b"), "{e}");
}

#[test]
fn an_ollama_refusing_a_schema_format_is_asked_with_json() {
    let o = ollama(&["tiny:latest"], &[], true);
    let mut b = OllamaBackend::new(&o.url, "tiny:latest", None, PATIENT, Some(schema()));
    let c = b
        .chat(&conversation(0), None, &GenParams::default(), &mut |_| {})
        .unwrap();
    assert_eq!(c.text, PROPOSAL);
    let chats = o.bodies("/api/chat");
    assert!(chats[0]["format"].is_object());
    assert_eq!(chats[1]["format"], "json");
    assert!(
        b.notices.iter().any(|n| n.contains("refused format")),
        "{:?}",
        b.notices
    );
}

/// `lsmtune tune` with a tiny workload and one iteration, the given flags and environment.
fn tune(out: &Path, flags: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = out.parent().unwrap();
    let mut c = crate::common::command();
    common::no_model_anywhere(&mut c, &dir.join("empty"));
    c.args([
        "tune",
        "--workload",
        "fillrandom",
        "--num",
        "10000",
        "--value-size",
        "100",
    ])
    .args(["--repeats", "2", "--confirm", "1", "--iterations", "1"])
    .args(flags)
    .arg("--out")
    .arg(out)
    .env_remove("OPENAI_API_KEY")
    .env_remove("OPENAI_MODEL")
    .env_remove("OLLAMA_HOST");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn tune_with_backend_ollama_runs_on_the_native_api() {
    let o = ollama(&["tiny-tuner:latest"], &[], false);
    let dir = tempfile::tempdir().unwrap();
    let host = o.url.trim_start_matches("http://").to_string();
    // OLLAMA_HOST as people set it (host:port, no scheme); no model named: the only one.
    let out = dir.path().join("ollama");
    let r = tune(&out, &["--backend", "ollama"], &[("OLLAMA_HOST", &host)]);
    common::assert_ok(&r);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("proposer: ollama:tiny-tuner:latest") && err.contains("num_ctx"),
        "{err}"
    );
    let paths = o.paths();
    assert_eq!(paths[..2], ["GET /v1/models", "POST /api/show"]);
    assert!(paths.iter().any(|p| p == "POST /api/chat"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("/v1/chat")), "{paths:?}");
    let chat = o.bodies("/api/chat").remove(0);
    assert!(chat["options"]["num_ctx"].as_u64().unwrap() >= MIN_NUM_CTX as u64);
    assert!(chat["format"]["properties"]["changes"].is_object());
    let first_turn = chat["messages"][1]["content"].as_str().unwrap();
    assert!(
        first_turn.len() > 2000,
        "the real first turn went out whole"
    );
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"proposer\":\"ollama:tiny-tuner:latest"),
        "{journal}"
    );
    assert!(journal.contains("max_background_jobs"), "{journal}");
    assert!(journal.contains("\"backend\":\"ollama\""), "{journal}");

    // No server: exit 2, and what to start.
    let r = tune(
        &dir.path().join("dead"),
        &[
            "--backend",
            "ollama",
            "--openai-base-url",
            &format!("http://{}", common::NOTHING_LISTENS),
        ],
        &[],
    );
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("cannot connect to Ollama") && err.contains("ollama serve"),
        "{err}"
    );
}

#[test]
fn an_openai_base_url_at_an_ollama_gets_the_same_care() {
    let o = ollama(&["qwen2.5:0.5b"], &[], false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("openai-at-ollama");
    let base = format!("{}/v1", o.url);
    // The probe that recognises the Ollama waits as long as --openai-timeout: far longer than
    // any loopback reply takes on a busy machine.
    let r = tune(
        &out,
        &[
            "--backend",
            "openai",
            "--openai-base-url",
            &base,
            "--openai-timeout",
            "300s",
        ],
        &[("OPENAI_API_KEY", "sk-not-for-ollama")],
    );
    common::assert_ok(&r);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("is an Ollama") && err.contains("/api/chat"),
        "{err}"
    );
    let paths = o.paths();
    assert_eq!(paths[0], "GET /api/version");
    assert!(paths.iter().any(|p| p == "POST /api/chat"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("/v1/chat")), "{paths:?}");
    assert!(
        o.bodies("/api/chat")[0]["options"]["num_ctx"]
            .as_u64()
            .unwrap()
            >= 8192
    );
    // The key went only into headers: nowhere in what the tune printed or wrote.
    for f in ["journal.jsonl", "report.md", "report.json"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(!text.contains("sk-not-for-ollama"), "{f}");
    }
    assert!(!err.contains("sk-not-for-ollama"));
}

#[test]
fn compare_takes_lmstudio_and_ollama_proposers() {
    let o = ollama(&["qwen2.5:0.5b", "tiny:latest"], &[], false);
    let l = lmstudio(&["qwen2.5-7b-instruct", "llama-3.2-1b"], &["llama-3.2-1b"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // --openai-base-url would name the address of both servers, so each proposer runs in its
    // own invocation: LM Studio at the flag, Ollama at OLLAMA_HOST. Same --out: the second run
    // reuses the shared baseline.
    for (proposer, env_host, flag) in [
        ("lmstudio", None, Some(format!("{}/v1", l.url))),
        ("ollama:tiny", Some(o.url.clone()), None),
    ] {
        let mut c = crate::common::command();
        c.args([
            "compare",
            "--proposers",
            proposer,
            "--workloads",
            "fillrandom",
        ])
        .args([
            "--seeds",
            "1",
            "--iterations",
            "1",
            "--num",
            "10000",
            "--value-size",
            "100",
        ])
        .args(["--repeats", "2", "--confirm", "1"])
        .arg("--out")
        .arg(&out)
        .env("HF_HUB_CACHE", &empty)
        .env("LSMTUNE_MODELS_DIR", &empty)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OLLAMA_HOST");
        if let Some(h) = env_host {
            c.env("OLLAMA_HOST", h);
        }
        if let Some(f) = flag {
            c.args(["--openai-base-url", &f]);
        }
        let r = c.output().unwrap();
        common::assert_ok(&r);
    }
    let lm_chat = l.bodies("/v1/chat/completions");
    assert!(!lm_chat.is_empty());
    assert_eq!(lm_chat[0]["model"], "llama-3.2-1b", "the loaded one");
    assert_eq!(lm_chat[0]["response_format"]["type"], "json_schema");
    let o_chat = o.bodies("/api/chat");
    assert!(!o_chat.is_empty());
    assert_eq!(o_chat[0]["model"], "tiny");
    let runs = out.join("runs/fillrandom");
    for (slug, proposer) in [
        ("lmstudio", "lmstudio:llama-3.2-1b"),
        ("ollama_tiny", "ollama:tiny"),
    ] {
        let j = std::fs::read_to_string(runs.join(slug).join("seed-1/journal.jsonl")).unwrap();
        assert!(j.contains(&format!("\"proposer\":\"{proposer}")), "{j}");
    }
}

/// A server that echoes the Authorization header into its error bodies, as some proxies do:
/// the key must not reach stderr, the journal or the report. And a tune that never got a
/// proposal (every call failed) says so and exits non-zero instead of reporting success.
#[test]
fn an_endpoint_that_always_fails_ends_the_tune_with_an_error_and_no_key_anywhere() {
    const SECRET: &str = "sk-echo-SECRET-42";
    let f = serve(Box::new(|_, _, _| {
        (
            500,
            format!(
                r#"{{"error": {{"message": "bad upstream; you sent Authorization: Bearer {SECRET}"}}}}"#
            ),
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let base = format!("{}/v1", f.url);
    let o = tune(
        &out,
        &["--backend", "openai", "--openai-base-url", &base],
        &[("OPENAI_API_KEY", SECRET)],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no proposal could be obtained"), "{err}");
    assert!(
        err.contains("[redacted]") || err.contains("HTTP 500"),
        "{err}"
    );
    let mut all = format!("{err}{}", String::from_utf8_lossy(&o.stdout));
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if e.path().is_file() {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
        }
    }
    assert!(!all.contains(SECRET), "the key leaked");
    assert!(all.contains("[redacted]"), "the echo was kept, redacted");

    // A key with a newline is refused before anything runs, without showing it; so is a base
    // URL that is not http(s).
    let o = tune(
        &dir.path().join("nl"),
        &["--backend", "openai", "--openai-base-url", &base],
        &[("OPENAI_API_KEY", "sk-line-SECRET\nsecond")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("control character") && !err.contains("SECRET"),
        "{err}"
    );
    let o = tune(
        &dir.path().join("ftp"),
        &[
            "--backend",
            "openai",
            "--openai-base-url",
            "ftp://127.0.0.1/v1",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is not http(s)"), "{err}");
    assert!(!dir.path().join("ftp").exists());
}

/// The endpoint client goes through the proxy the environment names (the request reaches it in
/// absolute form), and not when NO_PROXY names the host.
#[test]
fn the_endpoint_is_reached_through_http_proxy_unless_no_proxy_says_otherwise() {
    let proxy = serve(Box::new(|_, path, _| {
        if path.ends_with("/models") {
            return (200, r#"{"data": [{"id": "m"}]}"#.to_string());
        }
        let reply = serde_json::json!({
            "id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": PROPOSAL}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        });
        (200, reply.to_string())
    }));
    let dir = tempfile::tempdir().unwrap();
    let base = "http://lsmtune-proxy-test.invalid/v1";
    let o = tune(
        &dir.path().join("via"),
        &["--backend", "openai", "--openai-base-url", base],
        &[("HTTP_PROXY", &proxy.url)],
    );
    common::assert_ok(&o);
    let paths = proxy.paths();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("POST http://lsmtune-proxy-test.invalid/v1/chat/completions")),
        "{paths:?}"
    );
    let before = paths.len();
    let o = tune(
        &dir.path().join("direct"),
        &["--backend", "openai", "--openai-base-url", base],
        &[
            ("HTTP_PROXY", &proxy.url),
            ("NO_PROXY", "localhost,.invalid"),
        ],
    );
    assert!(!o.status.success());
    assert_eq!(
        proxy.paths().len(),
        before,
        "NO_PROXY host went through the proxy"
    );
}
