//! Helpers shared by the integration tests that run the lsmtune binary.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_lsmtune");

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
