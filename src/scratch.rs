//! Scratch folders lsmtune makes for itself (benchmark runs, validation databases): each is
//! created by us with a fixed prefix and an owner file naming the process that made it, and
//! removed when dropped. A process killed outright (SIGKILL, a crash, a power cut) cannot
//! remove its folders; a later run proves their owner dead and sweeps them, and touches nothing
//! it cannot prove is a dead lsmtune's.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file in a scratch folder that names the process that made it: `pid start-time
/// pid-namespace host` (older files have the first two or three).
pub const OWNER_FILE: &str = "owner";

/// An owner file is a line of a few numbers: anything longer is not ours.
const OWNER_MAX_BYTES: u64 = 256;

/// An empty folder with our prefix and no owner file (its maker was killed between creating it
/// and naming itself) is removed once it is this old.
const EMPTY_ORPHAN_AGE: Duration = Duration::from_secs(600);

/// This process's pid namespace (the inode of /proc/self/ns/pid; 0 when unreadable). A pid only
/// means something in its own namespace: a container sharing /tmp or /dev/shm with the host
/// sees the host's lsmtune pids as dead, and must leave their folders alone.
fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// This machine: /etc/machine-id, else the host name (one token). Pid namespaces of different
/// hosts have the same numbers, so a work folder shared between hosts (NFS) needs this too.
fn host() -> String {
    let id = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let id: String = id.split_whitespace().collect();
    if id.is_empty() { "-".into() } else { id }
}

/// A scratch folder of ours: removed when dropped ([`remove`]: its owner file last, and put
/// back if anything is left, so a folder that outlives its owner can always be swept).
#[derive(Debug)]
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        remove(&self.path);
    }
}

/// A scratch folder inside `parent` whose name starts with `prefix`, naming this process as its
/// owner; removed when dropped (never `parent` itself).
pub fn make(parent: &Path, prefix: &str) -> std::io::Result<Dir> {
    // Made by tempfile (a fresh random name, created exclusively), then owned by us: its drop
    // removes the owner file first, ours last.
    let path = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)?
        .keep();
    let dir = Dir { path };
    let me = std::process::id();
    let start = crate::interrupt::start_time(me).unwrap_or(0);
    let line = format!("{me} {start} {} {}\n", pid_namespace(), host());
    std::fs::write(dir.path().join(OWNER_FILE), line)?;
    Ok(dir)
}

/// Remove a scratch folder, its owner file last. Processes may still be writing into it (the
/// RocksDB threads of a worker whose parent died, a thread of a process being killed that
/// finishes its last system call), so a removal can fail midway, or a file can appear after
/// everything else went; then the owner file is written back as it was, and the folder still
/// names its dead owner for a later [`sweep`]. A folder without an owner file is never swept
/// unless empty, so it must never be left behind with content and without one. Returns whether
/// the folder is gone.
pub fn remove(dir: &Path) -> bool {
    let owner_path = dir.join(OWNER_FILE);
    let owner = std::fs::symlink_metadata(&owner_path)
        .ok()
        .filter(|m| m.is_file() && m.len() <= OWNER_MAX_BYTES)
        .and_then(|_| std::fs::read(&owner_path).ok());
    let rest_gone = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .filter(|e| e.file_name() != OWNER_FILE)
            .fold(true, |ok, e| {
                // file_type does not follow links; remove_dir_all removes a link, not its target.
                let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(e.path()).is_ok()
                } else {
                    std::fs::remove_file(e.path()).is_ok()
                };
                ok && gone
            })
    });
    if rest_gone {
        let _ = std::fs::remove_file(&owner_path);
        if std::fs::remove_dir(dir).is_ok() || std::fs::symlink_metadata(dir).is_err() {
            return true;
        }
    }
    if let Some(line) = owner
        && std::fs::symlink_metadata(&owner_path).is_err()
    {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&owner_path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &line));
    }
    false
}

/// The owner file of `dir`, if it is a small regular file of this user (read without following
/// a link or blocking on a FIFO someone put there).
fn read_owner(dir: &Path, euid: u32) -> Option<String> {
    let path = dir.join(OWNER_FILE);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.uid() != euid || meta.len() > OWNER_MAX_BYTES {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let mut text = String::new();
    file.take(OWNER_MAX_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Whether an owner line names a process of this machine and pid namespace that is gone: its
/// pid runs no more, or runs a process started at another time. Anything unreadable, an unknown
/// start time, another namespace or another host is not provably dead.
fn provably_dead(owner: &str, our_ns: u64, our_host: &str) -> bool {
    let f: Vec<&str> = owner.split_whitespace().collect();
    let (Some(Ok(pid)), Some(Ok(start))) = (
        f.first().map(|x| x.parse::<u32>()),
        f.get(1).map(|x| x.parse::<u64>()),
    ) else {
        return false;
    };
    if start == 0 || f.len() > 4 {
        return false;
    }
    if let Some(ns) = f.get(2)
        && ns.parse::<u64>().ok() != Some(our_ns)
    {
        return false;
    }
    if let Some(h) = f.get(3)
        && *h != our_host
    {
        return false;
    }
    crate::interrupt::start_time(pid) != Some(start)
}

/// Remove the folders under `parent` whose name starts with one of `prefixes`, that belong to
/// this user, and whose owner file names a dead process ([`provably_dead`]); and empty ones of
/// ours with no owner file that are older than ten minutes. Nothing else is touched, and
/// nothing at all when this process cannot read its own start time (no /proc to judge by).
/// Returns what was removed.
pub fn sweep(parent: &Path, prefixes: &[&str]) -> Vec<PathBuf> {
    let me = std::process::id();
    if crate::interrupt::start_time(me).is_none() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let (our_ns, our_host) = (pid_namespace(), host());
    let mut removed = Vec::new();
    for e in entries.flatten() {
        // file_type does not follow links: a link named like ours is not a folder of ours.
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !prefixes.iter().any(|p| name.starts_with(p)) || !e.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != euid {
            continue;
        }
        match read_owner(&path, euid) {
            Some(owner) => {
                if provably_dead(&owner, our_ns, &our_host) && remove(&path) {
                    removed.push(path);
                }
            }
            None => {
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > EMPTY_ORPHAN_AGE);
                let no_owner = std::fs::symlink_metadata(path.join(OWNER_FILE)).is_err();
                // remove_dir removes only an empty folder.
                if old && no_owner && std::fs::remove_dir(&path).is_ok() {
                    removed.push(path);
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder something still writes into while it is swept (the threads of a killed worker
    /// finishing their last calls) is either removed or keeps its owner file, never left with
    /// content and no owner (which no later sweep would take); once the writing stops, the next
    /// sweep removes it.
    #[test]
    fn a_folder_written_into_while_swept_keeps_its_owner_until_it_is_gone() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let parent = tempfile::tempdir().unwrap();
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let dead = exited.id();
        exited.wait().unwrap();
        let line = format!("{dead} 1 {} {}\n", pid_namespace(), host());
        let mut kept_by_a_race = 0;
        for round in 0..100 {
            let dir = parent.path().join(format!("lsmtune-race-{round}"));
            std::fs::create_dir_all(dir.join("db")).unwrap();
            std::fs::write(dir.join(OWNER_FILE), &line).unwrap();
            let stop = AtomicBool::new(false);
            let written = std::sync::atomic::AtomicU64::new(0);
            // The writer is stopped before anything is asserted, so a failure cannot leave it
            // spinning (and the scope waiting for it).
            let (exists, owner) = std::thread::scope(|s| {
                s.spawn(|| {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // File::create never makes a missing folder: a removed one stays gone.
                        let _ = std::fs::File::create(dir.join(format!("f{i}")));
                        let _ = std::fs::File::create(dir.join("db").join(format!("f{i}")));
                        i += 1;
                        written.store(i, Ordering::Relaxed);
                    }
                });
                // Sweep only once the writer is at work.
                while written.load(Ordering::Relaxed) < 10 {
                    std::thread::yield_now();
                }
                sweep(parent.path(), &["lsmtune-race-"]);
                let seen = (
                    dir.exists(),
                    std::fs::read_to_string(dir.join(OWNER_FILE)).ok(),
                );
                stop.store(true, Ordering::Relaxed);
                seen
            });
            assert!(
                !exists || owner.as_deref() == Some(line.as_str()),
                "round {round}: left with content and owner {owner:?}"
            );
            kept_by_a_race += usize::from(exists);
            sweep(parent.path(), &["lsmtune-race-"]);
            assert!(!dir.exists(), "round {round}: not swept once quiet");
        }
        // The race was really run: most rounds found the writer still at work.
        assert!(kept_by_a_race > 0, "no sweep met a writer");
    }

    /// Only folders with the prefix, of this user, and a provably dead owner of this host and
    /// pid namespace go, and empty unowned ones once old; everything else stays, and an owner
    /// file that is a FIFO or a link neither blocks the sweep nor counts.
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
            d
        };
        let (ns, host) = (pid_namespace(), host());
        mk("lsmtune-x-dead", Some(format!("{dead} 1 {ns} {host}\n")));
        mk("lsmtune-x-dead-ns-only", Some(format!("{dead} 1 {ns}\n")));
        mk("lsmtune-x-dead-old-format", Some(format!("{dead} 1\n")));
        mk(
            "lsmtune-x-other-namespace",
            Some(format!("{dead} 1 {} {host}\n", ns + 1)),
        );
        mk(
            "lsmtune-x-other-host",
            Some(format!("{dead} 1 {ns} elsewhere\n")),
        );
        mk(
            "lsmtune-x-start-unknown",
            Some(format!("{dead} 0 {ns} {host}\n")),
        );
        mk("lsmtune-x-garbled", Some("not a pid".into()));
        mk("lsmtune-x-unowned", None);
        mk("other-dead", Some(format!("{dead} 1\n")));
        let fifo = mk("lsmtune-x-fifo", None);
        let c = std::ffi::CString::new(fifo.join(OWNER_FILE).to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let link = mk("lsmtune-x-link", None);
        let target = parent.path().join("elsewhere-owner");
        std::fs::write(&target, format!("{dead} 1\n")).unwrap();
        std::os::unix::fs::symlink(&target, link.join(OWNER_FILE)).unwrap();
        let empty_old = parent.path().join("lsmtune-x-empty-old");
        std::fs::create_dir(&empty_old).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(&empty_old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        std::fs::create_dir(parent.path().join("lsmtune-x-empty-new")).unwrap();
        let live = make(parent.path(), "lsmtune-x-").unwrap();

        let mut removed = sweep(parent.path(), &["lsmtune-x-"]);
        removed.sort();
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "lsmtune-x-dead",
                "lsmtune-x-dead-ns-only",
                "lsmtune-x-dead-old-format",
                "lsmtune-x-empty-old"
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
            "elsewhere-owner".to_string(),
            "lsmtune-x-empty-new".into(),
            "lsmtune-x-fifo".into(),
            "lsmtune-x-garbled".into(),
            "lsmtune-x-link".into(),
            "lsmtune-x-other-host".into(),
            "lsmtune-x-other-namespace".into(),
            "lsmtune-x-start-unknown".into(),
            "lsmtune-x-unowned".into(),
            "other-dead".into(),
            live_name,
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
