//! Helpers shared by the integration test modules (one test binary, `tests/lsmtune/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_lsmtune");

/// A small, quick tune for the tests that run one: 20,000 keys of 100 B, 2 + 1 rounds a
/// candidate, at most 3.
pub const SMALL: &[&str] = &[
    "--num",
    "20000",
    "--value-size",
    "100",
    "--repeats",
    "2",
    "--confirm",
    "1",
    "--max-rounds",
    "3",
];

/// An address where nothing listens, for "cannot connect" cases: the discard port, which no
/// test binds (a port read from a listener the test then drops can be taken by a parallel
/// test's server before the connection is tried).
pub const NOTHING_LISTENS: &str = "127.0.0.1:9";

/// Run the binary with `args` (standard input empty).
pub fn lsmtune(args: &[&str]) -> Output {
    command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs")
}

/// The binary under test, with the history of past tunes turned off (`LSMTUNE_HISTORY=off`):
/// a test's tune must not start warm from another test's, nor write into the user's history.
/// The history's own tests name a history of their own with `--history`.
pub fn command() -> Command {
    let mut c = Command::new(BIN);
    c.env("LSMTUNE_HISTORY", "off");
    c
}

/// Limits for workers in tests: two minutes, 4 GiB, no cage, the page cache kept.
pub fn limits() -> lsmtune::bench::Limits {
    lsmtune::bench::Limits {
        timeout: std::time::Duration::from_secs(120),
        memory: 4 << 30,
        cage: None,
        drop_caches: false,
    }
}

/// The in-process engine on the binary under test, with [`limits`].
pub fn inprocess() -> lsmtune::bench::InProcess {
    lsmtune::bench::InProcess {
        exe: PathBuf::from(BIN),
        limits: limits(),
        live_ops: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
    }
}

/// No model anywhere and no endpoint: every model store points at the empty folder `empty`
/// (Hugging Face cache, lsmtune's models folder, Ollama's and LM Studio's), downloads are off,
/// and no endpoint is configured; `auto` must fall to the expert.
pub fn no_model_anywhere<'c>(cmd: &'c mut Command, empty: &Path) -> &'c mut Command {
    std::fs::create_dir_all(empty).unwrap();
    cmd.env("HF_HUB_CACHE", empty)
        .env("LSMTUNE_MODELS_DIR", empty)
        .env("OLLAMA_MODELS", empty)
        .env("LMSTUDIO_MODELS", empty)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("OPENAI_BASE_URL")
}

/// Fail, showing what the command printed, unless it exited with 0.
pub fn assert_ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Write the tiny test model into `dir/tiny` through the CLI; its folder.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny");
    let o = Command::new(BIN)
        .args(["models", "make-test-model", "--out"])
        .arg(&model)
        .output()
        .unwrap();
    assert_ok(&o);
    model
}

/// The library's test-model writers with the text `models make-test-model` trains their
/// tokenizer on (each option's key with its meaning as JSON, and with its type), so the tests'
/// models are the CLI's.
pub mod testmodel {
    use std::path::{Path, PathBuf};

    pub use lsmtune::llm::testmodel::{Arch, Quant, Shape};

    /// What the tokenizer learns besides its fixed lines.
    pub fn words() -> Vec<String> {
        let mut lines = Vec::new();
        for s in lsmtune::options::spec::specs() {
            lines.push(format!("{{\"{}\": {}}}", s.key, s.meaning));
            lines.push(format!("{}={}", s.key, s.ty.describe()));
        }
        lines
    }

    /// [`lsmtune::llm::testmodel::write_gguf`] with [`words`].
    pub fn write_gguf(
        dir: &Path,
        arch: Arch,
        shape: Shape,
        seed: u64,
        quant: impl Into<Quant>,
    ) -> anyhow::Result<PathBuf> {
        lsmtune::llm::testmodel::write_gguf(dir, arch, shape, seed, quant, &words())
    }

    /// [`lsmtune::llm::testmodel::write_safetensors`] with [`words`].
    pub fn write_safetensors(
        dir: &Path,
        arch: Arch,
        shape: Shape,
        seed: u64,
    ) -> anyhow::Result<PathBuf> {
        lsmtune::llm::testmodel::write_safetensors(dir, arch, shape, seed, &words())
    }

    /// [`lsmtune::llm::testmodel::write_tokenizer`] with [`words`].
    pub fn write_tokenizer(dir: &Path, vocab: usize) -> anyhow::Result<PathBuf> {
        lsmtune::llm::testmodel::write_tokenizer(dir, vocab, &words())
    }
}

/// The installed db_bench, or `None` with a visible SKIPPED line; under
/// `LSMTUNE_REQUIRE_DB_BENCH` (CI) a missing db_bench is a failure.
pub fn db_bench() -> Option<PathBuf> {
    let found = ["/usr/bin/db_bench", "/usr/local/bin/db_bench"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("LSMTUNE_REQUIRE_DB_BENCH").is_none(),
            "db_bench is required here (apt-get install rocksdb-tools)"
        );
        eprintln!("SKIPPED: db_bench not installed (apt-get install rocksdb-tools)");
    }
    found
}
