//! Making a benchmark see less memory than the machine has, so a data set larger than the
//! memory it may use really reads from the device: a memory cgroup around the worker process
//! (cgroup v2 `memory.max` where the memory controller is delegated to us, else cgroup v1
//! `memory.limit_in_bytes`; the page cache the worker fills is charged to it, so the kernel
//! evicts the worker's own file pages at the limit), and dropping the page cache between runs
//! (`/proc/sys/vm/drop_caches`, root only). Each says plainly why it cannot apply when it
//! cannot; the report states which applied.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A memory cgroup that lives as long as this value; processes started through
/// [`Cage::confine`] run inside it.
#[derive(Debug)]
pub struct Cage {
    dir: PathBuf,
    procs: CString,
    pub version: u8,
    pub limit: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// This process's cgroup path in the v2 hierarchy or in the v1 memory controller's.
fn own_path(version: u8) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (id, controllers, path) = (it.next()?, it.next()?, it.next()?);
        let hit = match version {
            2 => id == "0" && controllers.is_empty(),
            _ => controllers.split(',').any(|c| c == "memory"),
        };
        hit.then(|| path.to_string())
    })
}

fn v2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

impl Cage {
    /// A new cgroup limited to `limit` bytes of memory (page cache included), or why not.
    pub fn new(limit: u64) -> Result<Cage, String> {
        let name = format!(
            "lsmtune-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut why = Vec::new();
        match Self::v2(&name, limit) {
            Ok(c) => return Ok(c),
            Err(e) => why.push(format!("cgroup v2: {e}")),
        }
        match Self::v1(&name, limit) {
            Ok(c) => return Ok(c),
            Err(e) => why.push(format!("cgroup v1: {e}")),
        }
        Err(format!(
            "no memory cgroup could be made ({}); run as root or in a cgroup whose memory \
             controller is delegated to you",
            why.join("; ")
        ))
    }

    fn v2(name: &str, limit: u64) -> Result<Cage, String> {
        let root = v2_root().ok_or("not mounted")?;
        let own = own_path(2).ok_or("this process is in no v2 cgroup")?;
        let parent = root.join(own.trim_start_matches('/'));
        let controllers = std::fs::read_to_string(parent.join("cgroup.controllers"))
            .map_err(|e| format!("{}: {e}", parent.display()))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(format!(
                "the memory controller is not available in {}",
                parent.display()
            ));
        }
        let sub =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        if !sub.split_whitespace().any(|c| c == "memory") {
            std::fs::write(parent.join("cgroup.subtree_control"), "+memory").map_err(|e| {
                format!(
                    "cannot enable memory for children of {}: {e}",
                    parent.display()
                )
            })?;
        }
        Self::make(&parent.join(name), "memory.max", limit, 2)
    }

    fn v1(name: &str, limit: u64) -> Result<Cage, String> {
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() && !root.exists() {
            return Err("the memory controller is not mounted".into());
        }
        let own = own_path(1).ok_or("this process is in no v1 memory cgroup")?;
        let parent = root.join(own.trim_start_matches('/'));
        Self::make(&parent.join(name), "memory.limit_in_bytes", limit, 1)
    }

    fn make(dir: &Path, limit_file: &str, limit: u64, version: u8) -> Result<Cage, String> {
        std::fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cage = Cage {
            dir: dir.to_path_buf(),
            procs: CString::new(dir.join("cgroup.procs").to_string_lossy().into_owned())
                .map_err(|e| e.to_string())?,
            version,
            limit,
        };
        // On failure the Drop removes the folder again.
        std::fs::write(dir.join(limit_file), limit.to_string())
            .map_err(|e| format!("{}: {e}", dir.join(limit_file).display()))?;
        if version == 2 {
            // No swap: the limit must bite on the page cache, not push pages to swap.
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        }
        Ok(cage)
    }

    /// Start `cmd`'s process inside the cgroup (it moves itself in before `exec`).
    pub fn confine(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: between fork and exec only async-signal-safe calls: open, write, close on a
        // path built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if ok { Ok(()) } else { Err(err) }
            });
        }
    }

    /// The most memory (page cache included) the cgroup's processes used.
    pub fn peak(&self) -> Option<u64> {
        let file = if self.version == 2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// One line for reports: which mechanism and the limit.
    pub fn describe(&self) -> String {
        format!(
            "cgroup v{} memory limit of {} MiB (page cache included)",
            self.version,
            self.limit >> 20
        )
    }
}

/// How long dropping a [`Cage`] waits for its last processes to leave.
const LEAVE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

impl Cage {
    /// The pids still in the cgroup (none once it is gone or unreadable).
    fn members(&self) -> usize {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map_or(0, |t| t.split_whitespace().count())
    }
}

impl Drop for Cage {
    fn drop(&mut self) {
        // A cgroup is removed once no process is left in it; one the OOM killer took may still
        // be releasing its memory after its parent saw it end, for as long as the machine is
        // busy. So wait until none is left (within a deadline), then remove the folder (the
        // kernel frees its files with it).
        let start = std::time::Instant::now();
        loop {
            let members = self.members();
            if members == 0 && (std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()) {
                return;
            }
            if start.elapsed() > LEAVE_DEADLINE {
                tracing::warn!(
                    "could not remove the cgroup {} ({members} process(es) still in it)",
                    self.dir.display()
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Write dirty pages and drop the clean page cache, dentries and inodes, so the next run
/// starts cold; root only.
pub fn drop_page_cache() -> Result<(), String> {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| {
        format!("cannot drop the page cache (/proc/sys/vm/drop_caches: {e}); run as root")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cage_limits_what_its_process_may_use_or_says_why_not() {
        match Cage::new(64 << 20) {
            Err(why) => {
                assert!(why.contains("cgroup"), "{why}");
                // CI sets this where the machine can make a memory cgroup (.ci/run probes it),
                // so --worker-memory is exercised there, never skipped by a regression.
                assert!(
                    std::env::var_os("LSMTUNE_REQUIRE_CGROUP").is_none(),
                    "LSMTUNE_REQUIRE_CGROUP is set but no cage could be made: {why}"
                );
                eprintln!("SKIPPED: no memory cgroup here: {why}");
            }
            Ok(cage) => {
                // A shell that needs ~200 MB of memory is killed inside a 64 MiB cage.
                let mut cmd = Command::new("sh");
                cmd.args([
                    "-c",
                    "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
                ]);
                cage.confine(&mut cmd);
                let out = cmd.output().unwrap();
                assert!(!out.status.success(), "ran past the limit: {out:?}");
                let peak = cage.peak().unwrap();
                assert!(peak <= 64 << 20, "peak {peak}");
                let dir = cage.dir.clone();
                drop(cage);
                assert!(!dir.exists());

                // A process still in the cage when it is dropped (as one the OOM killer took
                // can be, for as long as the machine is busy): the drop waits for it to leave.
                let cage = Cage::new(64 << 20).unwrap();
                let mut cmd = Command::new("sh");
                cmd.args(["-c", "sleep 2 </dev/null >/dev/null 2>&1 &"]);
                cage.confine(&mut cmd);
                assert!(cmd.status().unwrap().success());
                let dir = cage.dir.clone();
                drop(cage);
                assert!(!dir.exists(), "the cage outlived its last process");
            }
        }
    }
}
