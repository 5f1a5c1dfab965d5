//! Scratch folders lsmtune makes for itself (benchmark runs, validation databases): each is
//! created by us with a fixed prefix and an owner file naming the process that made it (pid,
//! start time, pid namespace), and removed when dropped. A process killed outright (SIGKILL, a crash, a power
//! cut) cannot remove its folders; a later run proves their owner dead and sweeps them, and
//! touches nothing else.

use std::path::{Path, PathBuf};

/// The file in a scratch folder that names the process that made it: pid, start time, and the
/// pid namespace the pid belongs to.
pub const OWNER_FILE: &str = "owner";

/// This process's pid namespace (the inode of /proc/self/ns/pid; 0 when unreadable). A pid only
/// means something in its own namespace: a container sharing /tmp or /dev/shm with the host
/// sees the host's lsmtune pids as dead, and must leave their folders alone.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// A scratch folder inside `parent` whose name starts with `prefix`, naming this process as its
/// owner; removed when dropped (never `parent` itself).
pub fn make(parent: &Path, prefix: &str) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
    let me = std::process::id();
    let start = crate::interrupt::start_time(me).unwrap_or(0);
    let ns = pid_namespace();
    std::fs::write(dir.path().join(OWNER_FILE), format!("{me} {start} {ns}\n"))?;
    Ok(dir)
}

/// Remove the folders under `parent` whose name starts with `prefix` and whose owner file names
/// a process of this pid namespace that no longer runs (or whose pid now belongs to a process
/// started later). Folders without an owner file, with one that does not parse, or from another
/// pid namespace are not provably dead and are left. Returns what was removed.
pub fn sweep(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let our_ns = pid_namespace();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(prefix)
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
        // Owner files written before the namespace was recorded have two fields.
        match it.next() {
            None => {}
            Some(Some(ns)) if ns == our_ns => {}
            Some(_) => continue,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only folders with the prefix and a dead owner of this pid namespace go; a live owner's,
    /// another namespace's, an unowned one and other names stay.
    #[test]
    fn only_provably_dead_owners_folders_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let dead = exited.id();
        exited.wait().unwrap();
        let mk = |name: &str, owner: Option<String>| {
            let d = parent.path().join(name);
            std::fs::create_dir_all(d.join("db")).unwrap();
            if let Some(o) = owner {
                std::fs::write(d.join(OWNER_FILE), o).unwrap();
            }
        };
        let ns = pid_namespace();
        mk("lsmtune-x-dead", Some(format!("{dead} 1 {ns}\n")));
        mk("lsmtune-x-dead-old-format", Some(format!("{dead} 1\n")));
        mk(
            "lsmtune-x-other-namespace",
            Some(format!("{dead} 1 {}\n", ns + 1)),
        );
        mk("lsmtune-x-garbled", Some("not a pid".into()));
        mk("lsmtune-x-unowned", None);
        mk("other-dead", Some(format!("{dead} 1\n")));
        let live = make(parent.path(), "lsmtune-x-").unwrap();
        let mut removed = sweep(parent.path(), "lsmtune-x-");
        removed.sort();
        assert_eq!(
            removed,
            [
                parent.path().join("lsmtune-x-dead"),
                parent.path().join("lsmtune-x-dead-old-format")
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        let live_name = live
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut want = vec![
            "lsmtune-x-garbled".to_string(),
            "lsmtune-x-other-namespace".into(),
            "lsmtune-x-unowned".into(),
            "other-dead".into(),
            live_name,
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
