//! The OpenAI-compatible backend against a chat-completions server on loopback, inside the
//! test, that answers from a script and injects faults: 429 with Retry-After, 500s, a hang past
//! the timeout, malformed JSON, a refused connection, 401/404, a server refusing the strict JSON
//! schema, prose around the JSON, and a reply cut at max_tokens. The API key must appear in no
//! error and no debug output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lsmtune::llm::openai::{ApiKey, Endpoint, OpenAiBackend, ResponseFormat};
use lsmtune::llm::{Finish, GenParams, Llm, Message};
use serde_json::json;

const KEY: &str = "sk-test-SECRET-0123456789";

#[derive(Clone)]
enum Answer {
    Status(u16, String, Vec<(String, String)>),
    Hang(Duration),
}

fn ok(content: &str, finish: &str) -> Answer {
    let body = json!({
        "id": "x", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                  "prompt_tokens_details": {"cached_tokens": 64}}
    });
    Answer::Status(200, body.to_string(), vec![])
}

fn status(code: u16, body: &str) -> Answer {
    Answer::Status(code, body.to_string(), vec![])
}

/// (Authorization header, body) of every request received.
type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

struct Server {
    base_url: String,
    seen: Seen,
}

fn serve(script: Vec<Answer>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let script = script.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
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
                // Not a chat request (lsmtune asks GET /api/version to recognise an Ollama):
                // what an OpenAI-style server answers, without using up the script.
                if line.starts_with("GET ") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    );
                    return;
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push((
                    auth,
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                ));
                let answer = script.lock().unwrap().pop_front();
                match answer {
                    Some(Answer::Status(code, body, headers)) => {
                        let mut s = format!(
                            "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        );
                        for (k, v) in headers {
                            s.push_str(&format!("{k}: {v}\r\n"));
                        }
                        s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
                        let _ = stream.write_all(s.as_bytes());
                    }
                    Some(Answer::Hang(d)) => std::thread::sleep(d),
                    None => {
                        let _ = stream.write_all(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n");
                    }
                }
            });
        }
    });
    Server { base_url, seen }
}

/// An endpoint at `base_url` with a timeout no loopback reply comes near, however busy the
/// machine (a reply taken for a timeout would be retried and shift the script); the test about
/// the timeout sets its own.
fn endpoint(base_url: &str) -> Endpoint {
    Endpoint {
        base_url: base_url.to_string(),
        model: "test-model".into(),
        api_key: ApiKey::new(KEY),
        timeout: Duration::from_secs(30),
        max_retries: 2,
        backoff: Duration::from_millis(50),
    }
}

fn schema() -> serde_json::Value {
    lsmtune::grammar::schema::proposal_schema(
        lsmtune::options::catalog().unwrap(),
        &Default::default(),
    )
}

fn ask(b: &mut OpenAiBackend) -> anyhow::Result<lsmtune::llm::Completion> {
    b.chat(
        &[Message::system("tune"), Message::user("propose")],
        None,
        &GenParams::default(),
        &mut |_| {},
    )
}

fn no_key(text: &str) {
    assert!(
        !text.contains(KEY) && !text.contains("SECRET"),
        "key leaked: {text}"
    );
}

#[test]
fn a_reply_with_the_strict_schema_the_key_and_usage() {
    let reply = r#"{"reasoning": "stalls", "changes": [{"write_buffer_size": 134217728}]}"#;
    let s = serve(vec![ok(reply, "stop")]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), Some(schema()));
    let c = ask(&mut b).unwrap();
    assert_eq!(c.text, reply);
    assert_eq!(
        (c.prompt_tokens, c.completion_tokens, c.cached_tokens),
        (120, 30, 64)
    );
    assert_eq!(c.finish, Finish::Eos);
    let seen = s.seen.lock().unwrap();
    let (auth, body) = &seen[0];
    assert_eq!(auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(body["response_format"]["json_schema"]["schema"], schema());
    assert_eq!(body["messages"][1]["content"], "propose");
    no_key(&format!("{:?} {:?} {}", b.endpoint, b.notices, b.name()));
}

#[test]
fn rate_limits_and_server_errors_are_retried_with_retry_after() {
    let s = serve(vec![
        Answer::Status(429, "{}".into(), vec![("Retry-After".into(), "1".into())]),
        status(503, r#"{"error": {"message": "overloaded"}}"#),
        ok("{}", "stop"),
    ]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), None);
    let t = Instant::now();
    ask(&mut b).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "Retry-After honoured"
    );
    assert_eq!(b.retries, 2);
    assert_eq!(s.seen.lock().unwrap().len(), 3);
    assert!(
        b.notices.iter().any(|n| n.contains("429")),
        "{:?}",
        b.notices
    );

    // A Retry-After that is not a sane number of seconds (NaN panicked once) is ignored: the
    // client's own backoff applies and the answer after it is taken.
    for bad in ["NaN", "inf", "-5", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let s = serve(vec![
            Answer::Status(429, "{}".into(), vec![("Retry-After".into(), bad.into())]),
            ok("{}", "stop"),
        ]);
        let mut b = OpenAiBackend::new(endpoint(&s.base_url), None);
        ask(&mut b).unwrap_or_else(|e| panic!("Retry-After: {bad}: {e}"));
        assert_eq!(b.retries, 1, "Retry-After: {bad}");
    }

    // Bounded: three 500s with max_retries 2 is an error naming the status.
    let s = serve(vec![status(500, "boom"); 3]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), None);
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(e.contains("HTTP 500") && e.contains("giving up"), "{e}");
    no_key(&e);
}

#[test]
fn a_hang_past_the_timeout_is_retried_then_reported() {
    // The server hangs for a minute; two attempts of 400 ms each (~0.85 s with the backoff)
    // must end well before that. 30 s is a deadline for the failure, not a speed claim: only
    // a timeout that never fired (the client waiting out the hang) comes near it.
    let s = serve(vec![Answer::Hang(Duration::from_secs(60)); 2]);
    let mut e = endpoint(&s.base_url);
    e.timeout = Duration::from_millis(400);
    e.max_retries = 1;
    let mut b = OpenAiBackend::new(e, None);
    let t = Instant::now();
    let err = ask(&mut b).unwrap_err().to_string();
    assert!(
        err.contains("no answer") && err.contains("2 attempts"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    no_key(&err);
}

#[test]
fn clear_errors_for_bad_bodies_refusals_and_no_server() {
    let s = serve(vec![
        status(200, "<html>not json</html>"),
        status(
            401,
            r#"{"error": {"message": "Incorrect API key provided: sk-t***789"}}"#,
        ),
        status(
            404,
            r#"{"error": {"message": "The model `test-model` does not exist"}}"#,
        ),
    ]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), None);
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(e.contains("not JSON") && e.contains("<html>"), "{e}");
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("OPENAI_API_KEY"),
        "{e}"
    );
    no_key(&e);
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(
        e.contains("HTTP 404") && e.contains("--openai-base-url"),
        "{e}"
    );

    let url = format!("http://{}/v1", crate::common::NOTHING_LISTENS);
    let mut b = OpenAiBackend::new(endpoint(&url), None);
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(
        e.contains("cannot connect") && e.contains("server running"),
        "{e}"
    );
    no_key(&e);
}

#[test]
fn a_server_refusing_the_schema_is_asked_again_with_weaker_formats() {
    let reply = "Sure! Here you go:\n```json\n{\"reasoning\": \"r\", \"changes\": [{\"max_background_jobs\": 4}]}\n```\nGood luck.";
    let s = serve(vec![
        status(
            400,
            r#"{"error": {"message": "response_format json_schema is not supported"}}"#,
        ),
        status(
            400,
            r#"{"error": {"message": "response_format json_object is not supported"}}"#,
        ),
        ok(reply, "stop"),
        ok(reply, "stop"),
    ]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), Some(schema()));
    let p = lsmtune::tune::ask::ask(
        &mut b,
        None,
        &[Message::user("propose")],
        &GenParams::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(b.format(), ResponseFormat::Plain);
    assert_eq!(b.notices.len(), 2, "{:?}", b.notices);
    assert!(b.notices[0].contains("json_schema") && b.notices[0].contains("json_object"));
    // Prose around the JSON still yields the proposal for the calibrator.
    assert_eq!(p.raw.entries.len(), 1);
    assert_eq!(p.raw.entries[0].key, "max_background_jobs");
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen[0].1["response_format"]["type"], "json_schema");
    assert_eq!(seen[1].1["response_format"]["type"], "json_object");
    assert!(seen[2].1.get("response_format").is_none());
    drop(seen);
    // The downgrade is remembered: the next turn starts plain.
    ask(&mut b).unwrap();
    assert!(s.seen.lock().unwrap()[3].1.get("response_format").is_none());

    // llama-cpp-python's server answers an unknown response_format with a 500 and a pydantic
    // validation error (seen with benches/openai_llamacpp_server.sh): also a downgrade, at once.
    let pydantic = "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}";
    let s = serve(vec![status(500, pydantic), ok(reply, "stop")]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), Some(schema()));
    ask(&mut b).unwrap();
    assert_eq!(b.format(), ResponseFormat::JsonObject);
    assert_eq!(b.retries, 0, "a format refusal is not retried");
    assert_eq!(
        s.seen.lock().unwrap()[1].1["response_format"]["type"],
        "json_object"
    );

    // A 400 about something else is an error, not a downgrade.
    let s = serve(vec![status(
        400,
        r#"{"error": {"message": "messages: too long"}}"#,
    )]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), Some(schema()));
    let e = ask(&mut b).unwrap_err().to_string();
    assert!(e.contains("HTTP 400") && e.contains("too long"), "{e}");
    assert_eq!(b.format(), ResponseFormat::JsonSchema);
}

#[test]
fn a_reply_cut_at_max_tokens_is_flagged() {
    let s = serve(vec![ok("{\"reasoning\": \"the workload is wri", "length")]);
    let mut b = OpenAiBackend::new(endpoint(&s.base_url), Some(schema()));
    let c = ask(&mut b).unwrap();
    assert_eq!(c.finish, Finish::Length);
    assert!(b.notices.iter().any(|n| n.contains("cut at max_tokens")));
}

#[test]
fn tune_picks_the_endpoint_when_no_local_model_and_never_stores_the_key() {
    let reply = r#"{"reasoning": "more background jobs", "changes": [{"max_background_jobs": 4}]}"#;
    let mut script = vec![status(
        400,
        r#"{"error": {"message": "response_format json_schema is not supported"}}"#,
    )];
    script.extend(vec![ok(reply, "stop"); 8]);
    let s = serve(script);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |out: &std::path::Path, extra: &[&str]| {
        crate::common::command()
            .args([
                "tune",
                "--workload",
                "fillrandom",
                "--num",
                "10000",
                "--value-size",
                "100",
            ])
            .args(["--repeats", "2", "--confirm", "1", "--iterations", "1"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .env("OPENAI_BASE_URL", &s.base_url)
            .env("OPENAI_API_KEY", KEY)
            .env("HF_HUB_CACHE", &empty)
            .env("LSMTUNE_MODELS_DIR", &empty)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    // auto: no local model anywhere, an endpoint configured.
    let out = dir.path().join("auto");
    let o = run(&out, &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no local model found in any store")
            && err.contains("; the endpoint is configured"),
        "{err}"
    );
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"proposer\":\"openai:gpt-4o"),
        "{journal}"
    );
    assert!(journal.contains("max_background_jobs"));
    // The downgrade is recorded with the iteration and shown to the user.
    assert!(journal.contains("refused response_format"), "{journal}");
    assert!(
        err.contains("note: the endpoint refused response_format"),
        "{err}"
    );
    // The request went out with the key, and the key is nowhere in what the tune wrote.
    assert!(
        s.seen.lock().unwrap()[0]
            .0
            .as_deref()
            .unwrap()
            .ends_with(KEY)
    );
    for f in [
        "journal.jsonl",
        "report.md",
        "report.json",
        "OPTIONS-tuned.ini",
    ] {
        no_key(&std::fs::read_to_string(out.join(f)).unwrap());
    }
    no_key(&err);
    no_key(&String::from_utf8_lossy(&o.stdout));

    // The finished run resumed with no endpoint configured: the report is written again from
    // the journal, and no request goes out.
    let asked = s.seen.lock().unwrap().len();
    std::fs::remove_file(out.join("report.md")).unwrap();
    let o = crate::common::command()
        .args(["tune", "--resume"])
        .arg(&out)
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env("HF_HUB_CACHE", &empty)
        .env("LSMTUNE_MODELS_DIR", &empty)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(said.contains("stopped:"), "{said}");
    assert!(out.join("report.md").is_file());
    assert_eq!(s.seen.lock().unwrap().len(), asked);

    // local asked for, but the model cannot be loaded: the endpoint takes over, and says why.
    let out = dir.path().join("local");
    let o = run(
        &out,
        &["--backend", "local", "--model", "/nonexistent/model.gguf"],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("the local model could not be loaded"), "{err}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("the local model could not be loaded"), "{md}");
}

/// `lsmtune tune` with one iteration against `base_url`, the key (if any) in OPENAI_API_KEY.
fn tune_at(base_url: &str, key: Option<&str>, out: &std::path::Path) -> std::process::Output {
    let empty = out.with_extension("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = crate::common::command();
    c.args(["tune", "--workload", "fillrandom", "--num", "10000"])
        .args(["--value-size", "100", "--repeats", "2", "--confirm", "1"])
        .args(["--iterations", "1", "--backend", "openai"])
        .args(["--openai-base-url", base_url])
        .arg("--out")
        .arg(out)
        .env("HF_HUB_CACHE", &empty)
        .env("LSMTUNE_MODELS_DIR", &empty)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    if let Some(k) = key {
        c.env("OPENAI_API_KEY", k);
    }
    c.output().unwrap()
}

/// Everything a tune printed and left in its folder (the lock, the journal, the reports, every
/// prompt and reply), as one text.
fn everything(o: &std::process::Output, out: &std::path::Path) -> String {
    let mut all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    all
}

/// A key with the characters JSON encoders like to escape.
const SLASHED: &str = "sk-live/abc+def/SECRET-0123456789";

/// A server echoing the key in an error with `/` written `\/` (PHP's json_encode, several Java
/// and .NET encoders): decoding the body must not bring the key back. It is in no output and no
/// file of the run folder.
#[test]
fn a_key_escaped_in_an_error_body_is_redacted_after_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let escaped = SLASHED.replace('/', "\\/");
    let error = format!(r#"{{"error": {{"message": "invalid key: Bearer {escaped}"}}}}"#);
    let s = serve(vec![status(401, &error); 4]);
    let out = dir.path().join("error");
    let o = tune_at(&s.base_url, Some(SLASHED), &out);
    let all = everything(&o, &out);
    assert!(!all.contains("SECRET"), "the key leaked: {all}");
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("invalid key: Bearer [redacted]"), "{all}");
}

/// A 200 reply whose content carries the key with every character a `\uXXXX` escape: the
/// decoded reply, its reasoning, the journal, the reports and prompts/*-reply.txt never hold
/// it.
#[test]
fn a_key_escaped_in_a_reply_is_redacted_after_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let reply =
        format!(r#"{{"reasoning": "use {SLASHED}", "changes": [{{"max_background_jobs": 4}}]}}"#);
    let unicode: String = SLASHED
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let script: Vec<Answer> = (0..8)
        .map(|_| match ok(&reply, "stop") {
            Answer::Status(code, body, h) => {
                Answer::Status(code, body.replace(SLASHED, &unicode), h)
            }
            other => other,
        })
        .collect();
    let s = serve(script);
    let out = dir.path().join("reply");
    let o = tune_at(&s.base_url, Some(SLASHED), &out);
    let all = everything(&o, &out);
    assert!(!all.contains("SECRET"), "the key leaked: {all}");
    crate::common::assert_ok(&o);
    assert!(all.contains("use [redacted]"), "{all}");
    assert!(out.join("prompts/iter-001-reply.txt").exists());
}

/// Credentials written into the base URL authenticate the requests (HTTP Basic, no key set)
/// and are shown and stored nowhere: not on stderr, not in the journal, the reports or .lock.
#[test]
fn credentials_in_the_base_url_are_sent_but_never_shown_or_stored() {
    let reply = r#"{"reasoning": "jobs", "changes": [{"max_background_jobs": 4}]}"#;
    let s = serve(vec![ok(reply, "stop"); 8]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let with_user = s.base_url.replace("http://", "http://alice:pw-SECRET-5@");
    let o = tune_at(&with_user, None, &out);
    let all = everything(&o, &out);
    crate::common::assert_ok(&o);
    assert!(out.join(".lock").exists());
    assert!(
        !all.contains("SECRET") && !all.contains("alice"),
        "the credentials leaked: {all}"
    );
    assert!(
        all.contains(&s.base_url),
        "the URL itself is still shown: {all}"
    );
    let seen = s.seen.lock().unwrap();
    // "alice:pw-SECRET-5" in base64.
    assert_eq!(seen[0].0.as_deref(), Some("Basic YWxpY2U6cHctU0VDUkVULTU="));
}
