//! `models pull` and `--model` resolution against a Hugging Face endpoint on loopback: a small
//! server inside the test speaks the hub's `resolve` protocol (etag, x-repo-commit,
//! Content-Range, ranged GETs) and counts requests, so downloads, the cache layout they leave,
//! offline mode (zero requests) and the errors for 404 / 401 / no server are all checked on the
//! real hf-hub client with no internet.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::testmodel::{Arch, Shape, write_gguf};
use candle_core::quantized::GgmlDType;
use lsmtune::llm::hub::Hub;
use lsmtune::llm::local::LocalModel;
use lsmtune::llm::{GenParams, Llm, Message};

/// A fake hub: `/{repo}/resolve/main/{file}` serves `files[(repo, file)]`; `denied` repos get
/// 401; everything else 404.
struct FakeHub {
    endpoint: String,
    requests: Arc<AtomicUsize>,
}

fn serve(files: HashMap<(String, String), Vec<u8>>, denied: Vec<String>) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            let files = files.clone();
            let denied = denied.clone();
            std::thread::spawn(move || answer(stream, &files, &denied));
        }
    });
    FakeHub { endpoint, requests }
}

fn answer(mut stream: TcpStream, files: &HashMap<(String, String), Vec<u8>>, denied: &[String]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range_start = 0usize;
    let mut range_end: Option<usize> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap();
            range_start = a.parse().unwrap();
            range_end = b.parse().ok();
        }
    }
    let (repo, file) = match path.split_once("/resolve/main/") {
        Some((r, f)) => (r.trim_start_matches('/').to_string(), f.to_string()),
        None => (String::new(), String::new()),
    };
    let reply = |status: &str, headers: &[String], body: &[u8]| {
        let mut s = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut out = s.into_bytes();
        out.extend_from_slice(body);
        out
    };
    let bytes = if denied.contains(&repo) {
        reply("401 Unauthorized", &[], b"gated")
    } else if let Some(body) = files.get(&(repo.clone(), file.clone())) {
        let end = range_end.unwrap_or(body.len() - 1).min(body.len() - 1);
        let part = &body[range_start.min(body.len())..=end];
        reply(
            "206 Partial Content",
            &[
                format!("ETag: \"{:x}-{}\"", body.len(), file.len()),
                "X-Repo-Commit: 0123456789abcdef0123456789abcdef01234567".to_string(),
                format!("Content-Range: bytes {range_start}-{end}/{}", body.len()),
            ],
            part,
        )
    } else {
        reply("404 Not Found", &[], b"Entry not found")
    };
    let _ = stream.write_all(&bytes);
}

fn tiny_model_files() -> (tempfile::TempDir, HashMap<(String, String), Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let gguf = write_gguf(
        &dir.path().join("m"),
        Arch::Qwen2,
        Shape::TINY,
        3,
        GgmlDType::Q8_0,
    )
    .unwrap();
    let tok = gguf.parent().unwrap().join("tokenizer.json");
    let mut files = HashMap::new();
    files.insert(
        ("acme/tiny-GGUF".to_string(), "tiny-q8_0.gguf".to_string()),
        std::fs::read(&gguf).unwrap(),
    );
    files.insert(
        ("acme/tiny-GGUF".to_string(), "tokenizer.json".to_string()),
        std::fs::read(&tok).unwrap(),
    );
    (dir, files)
}

fn hub_at(root: &Path, endpoint: &str) -> Hub {
    Hub {
        hf_cache: root.join("hf/hub"),
        models_dir: root.join("models"),
        endpoint: endpoint.to_string(),
        ollama: Vec::new(),
        lmstudio: Vec::new(),
    }
}

#[test]
fn pull_downloads_into_the_cache_layout_and_later_lookups_stay_offline() {
    let (_src, files) = tiny_model_files();
    let expected = files[&("acme/tiny-GGUF".to_string(), "tiny-q8_0.gguf".to_string())].clone();
    let server = serve(files, vec![]);
    let root = tempfile::tempdir().unwrap();
    let hub = hub_at(root.path(), &server.endpoint);
    let spec = "acme/tiny-GGUF:tiny-q8_0.gguf";

    // Offline and not cached: an error naming the cache, and not one request.
    let err = hub.find(spec, true).unwrap_err().to_string();
    assert!(err.contains("not found") && err.contains("hf/hub"), "{err}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "offline touched the network"
    );

    // Online: downloaded (weights, tokenizer; tokenizer_config.json is absent -> 404, fine).
    let files = hub.find(spec, false).unwrap();
    assert!(server.requests.load(Ordering::SeqCst) >= 4);
    assert_eq!(
        std::fs::read(&files.weights).unwrap(),
        expected,
        "bytes intact"
    );
    let cached = root.path().join("hf/hub/models--acme--tiny-GGUF");
    assert_eq!(
        std::fs::read_to_string(cached.join("refs/main"))
            .unwrap()
            .trim(),
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(
        files
            .weights
            .starts_with(cached.join("snapshots/0123456789abcdef0123456789abcdef01234567"))
    );
    assert!(files.tokenizer_config.is_none());

    // Now offline resolution finds it, with no further request, and the model runs.
    let before = server.requests.load(Ordering::SeqCst);
    let again = hub.find(spec, true).unwrap();
    assert_eq!(again.weights, files.weights);
    assert_eq!(server.requests.load(Ordering::SeqCst), before);
    let mut m = LocalModel::load(&again).unwrap();
    let params = GenParams {
        max_tokens: 3,
        temperature: 0.0,
        ..GenParams::default()
    };
    m.chat(&[Message::user("hi")], None, &params, &mut |_| {})
        .unwrap();
}

#[test]
fn hub_errors_say_what_happened() {
    let (_src, files) = tiny_model_files();
    let server = serve(files, vec!["acme/gated".to_string()]);
    let root = tempfile::tempdir().unwrap();
    let hub = hub_at(root.path(), &server.endpoint);

    let e = hub.pull("acme/nope:x.gguf").unwrap_err().to_string();
    assert!(e.contains("does not exist") && e.contains("404"), "{e}");
    let e = hub.pull("acme/gated:x.gguf").unwrap_err().to_string();
    assert!(e.contains("gated") && e.contains("HF_TOKEN"), "{e}");
    // A GGUF repo without tokenizer.json: the advice says where to get one.
    let e = format!("{:#}", hub.pull("acme/nope-tok:x.gguf").unwrap_err());
    assert!(e.contains("404"), "{e}");
    // Not a name and not ORG/REPO.
    let e = hub.pull("no-such-model").unwrap_err().to_string();
    assert!(e.contains("neither a known model name"), "{e}");

    // No server at all: "cannot reach", with the offline advice; the local search is listed too.
    let hub = hub_at(
        root.path(),
        &format!("http://{}", crate::common::NOTHING_LISTENS),
    );
    let e = hub
        .find("acme/tiny-GGUF:tiny-q8_0.gguf", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot reach") && e.contains("--offline"), "{e}");
    assert!(e.contains("Searched"), "{e}");
}

#[test]
fn models_pull_on_the_command_line() {
    let (_src, files) = tiny_model_files();
    let server = serve(files, vec![]);
    let root = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_lsmtune");
    let run = |args: &[&str], offline: bool| {
        let mut c = Command::new(bin);
        c.args(args)
            .env("HF_ENDPOINT", &server.endpoint)
            .env("HF_HUB_CACHE", root.path().join("hub"))
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE");
        if offline {
            c.env("HF_HUB_OFFLINE", "1");
        }
        c.output().unwrap()
    };
    let spec = "acme/tiny-GGUF:tiny-q8_0.gguf";
    let o = run(&["models", "pull", spec], true);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing was downloaded"));
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);

    let o = run(&["models", "pull", spec], false);
    let out = String::from_utf8_lossy(&o.stdout);
    common::assert_ok(&o);
    assert!(
        out.contains("weights:") && out.contains("tiny-q8_0.gguf"),
        "{out}"
    );

    // `llm chat --model ORG/REPO:FILE` now runs from the cache with the network off.
    let o = run(
        &[
            "llm",
            "chat",
            "--model",
            spec,
            "--prompt",
            "hi",
            "--max-tokens",
            "3",
            "--offline",
        ],
        true,
    );
    common::assert_ok(&o);
}

/// An ordinary GGUF repo: the file and nothing else (no tokenizer.json). `pull` fetches the
/// GGUF, the missing tokenizer.json is no error, and the model runs on its own vocabulary.
#[test]
fn a_gguf_repo_without_a_tokenizer_pulls_and_runs() {
    let (_src, mut files) = tiny_model_files();
    let gguf = files
        .remove(&("acme/tiny-GGUF".to_string(), "tiny-q8_0.gguf".to_string()))
        .unwrap();
    files.clear();
    files.insert(("acme/bare-GGUF".to_string(), "m.gguf".to_string()), gguf);
    let server = serve(files, vec![]);
    let root = tempfile::tempdir().unwrap();
    let hub = hub_at(root.path(), &server.endpoint);
    let got = hub.pull("acme/bare-GGUF:m.gguf").unwrap();
    assert!(got.tokenizer.is_none(), "{got:?}");
    let mut m = LocalModel::load(&got).unwrap();
    assert!(m.notes()[0].contains("GGUF metadata"), "{:?}", m.notes());
    let params = GenParams {
        max_tokens: 3,
        temperature: 0.0,
        ..GenParams::default()
    };
    m.chat(&[Message::user("hi")], None, &params, &mut |_| {})
        .unwrap();
}

/// A hub that answers `resolve` with the headers given, a body of `body`, and optionally a
/// redirect; records the Authorization header of every request it sees.
fn hostile(
    headers: Vec<String>,
    status: &'static str,
    body: &'static [u8],
) -> (String, Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut auth = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("authorization:") {
                    auth = Some(v.trim().to_string());
                }
            }
            log.lock().unwrap().push(auth);
            let mut s = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
            for h in &headers {
                s.push_str(h);
                s.push_str("\r\n");
            }
            s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut out = s.into_bytes();
            out.extend_from_slice(body);
            let _ = stream.write_all(&out);
        }
    });
    (url, seen)
}

/// What a hostile hub answers decides nothing on disk: an ETag that is a path, a commit that
/// climbs out of the cache, and a redirect to another host (which must not get the token) are
/// refused or handled without writing outside the cache and without a panic.
#[test]
fn a_hostile_hub_cannot_write_outside_the_cache_or_take_the_token() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                format!("ETag: \"{}\"", victim.display()),
                format!("X-Repo-Commit: {commit}"),
            ],
            "blob name",
        ),
        (
            vec!["ETag: \"abc123\"".into(), "X-Repo-Commit: ../..".into()],
            "commit id",
        ),
    ];
    for (headers, says) in cases {
        let (url, _) = hostile(headers, "200 OK", b"owned");
        let hub = hub_at(root.path(), &url);
        let e = format!("{:#}", hub.pull("acme/evil:model.gguf").unwrap_err());
        assert!(e.contains(says), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
    // Only the cache folder was created under the root.
    let mut names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| n == "victim" || n == "hf"),
        "{names:?}"
    );

    // A redirect to another host: followed, without the token.
    let (cdn, cdn_seen) = hostile(vec![], "200 OK", b"GGUF-bytes");
    let (hub_url, hub_seen) = hostile(
        vec![
            "ETag: \"abc123\"".into(),
            format!("X-Repo-Commit: {commit}"),
            format!("Location: {cdn}/blob"),
        ],
        "302 Found",
        b"",
    );
    let o = crate::common::command()
        .args(["models", "pull", "acme/ok:model.gguf"])
        .env("HF_ENDPOINT", &hub_url)
        .env("HF_HUB_CACHE", root.path().join("hf2"))
        .env("HF_TOKEN", "hf_SECRET_token")
        .output()
        .unwrap();
    let hub_auth = hub_seen.lock().unwrap().clone();
    let cdn_auth = cdn_seen.lock().unwrap().clone();
    assert!(
        hub_auth
            .iter()
            .all(|a| a.as_deref() == Some("bearer hf_secret_token")),
        "{hub_auth:?}"
    );
    assert!(
        !cdn_auth.is_empty() && cdn_auth.iter().all(Option::is_none),
        "{cdn_auth:?}"
    );
    let out = String::from_utf8_lossy(&o.stderr);
    assert!(!out.contains("SECRET"), "{out}");
    let blob = root.path().join("hf2/models--acme--ok/blobs/abc123");
    assert_eq!(std::fs::read(&blob).unwrap(), b"GGUF-bytes", "{out}");
}
