//! Scratch folders for benchmark runs: each is made by us under the work folder (or the temp
//! folder) with a fixed prefix and an owner file naming the process that made it (pid and start
//! time), removed when its run ends; folders whose owner died (a run killed outright) are
//! swept by a later run, and nothing else is ever touched.

use std::path::{Path, PathBuf};

/// Prefix of every scratch folder lsmtune makes for a run.
pub const RUN_DIR_PREFIX: &str = "lsmtune-bench-";
/// The file in a scratch folder that names the process that made it (pid and start time).
pub(super) const OWNER_FILE: &str = "owner";

/// A scratch folder for one run, created by us inside `parent` (or the temp folder) and removed
/// when dropped; never the parent itself. It names its owner (this process) so that, should the
/// owner die before removing it, a later run can prove it stale ([`sweep_stale`]).
pub fn run_dir(parent: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let b = {
        let mut b = tempfile::Builder::new();
        b.prefix(RUN_DIR_PREFIX);
        b
    };
    let dir = match parent {
        Some(p) => b.tempdir_in(p),
        None => b.tempdir(),
    }?;
    let me = std::process::id();
    let start = crate::interrupt::start_time(me).unwrap_or(0);
    std::fs::write(dir.path().join(OWNER_FILE), format!("{me} {start}\n"))?;
    Ok(dir)
}

/// Remove the scratch folders under `parent` (or the temp folder) whose owner is dead: a run
/// killed outright (SIGKILL, a crash, a power cut) leaves its 50-75 MB database behind. Only
/// folders with our prefix and an owner file naming a process that no longer runs (or whose pid
/// now belongs to a process started later) are touched. Returns what was removed.
pub fn sweep_stale(parent: Option<&Path>) -> Vec<PathBuf> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(RUN_DIR_PREFIX)
            || !e.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(e.path().join(OWNER_FILE)) else {
            continue;
        };
        let mut it = owner.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (Some(Some(pid)), Some(Some(start))) = (it.next(), it.next()) else {
            continue;
        };
        let alive = u32::try_from(pid)
            .ok()
            .and_then(crate::interrupt::start_time)
            .is_some_and(|s| s == start);
        if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}
