//! Scratch folders for benchmark runs: made under the work folder (or the temp folder) with a
//! fixed prefix and an owner file ([`crate::scratch`]), removed when its run ends; folders whose
//! owner died (a run killed outright) are swept by a later run, and nothing else is touched.

use std::path::{Path, PathBuf};

/// Prefix of every scratch folder lsmtune makes for a run.
pub const RUN_DIR_PREFIX: &str = "lsmtune-bench-";

/// A scratch folder for one run, created by us inside `parent` (or the temp folder) and removed
/// when dropped; never the parent itself. It names its owner (this process) so that, should the
/// owner die before removing it, a later run can prove it stale ([`sweep_stale`]).
pub fn run_dir(parent: Option<&Path>) -> std::io::Result<crate::scratch::Dir> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    crate::scratch::make(&parent, RUN_DIR_PREFIX)
}

/// Remove the run folders under `parent` (or the temp folder) whose owner is dead: a run killed
/// outright (SIGKILL, a crash, a power cut) leaves its 50-75 MB database behind. Returns what
/// was removed.
pub fn sweep_stale(parent: Option<&Path>) -> Vec<PathBuf> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    crate::scratch::sweep(&parent, &[RUN_DIR_PREFIX])
}
