//! One writer per run folder. A tune, a resume or a compare holds an advisory lock (`flock`) on
//! `.lock` inside its output folder for as long as it runs, with its process id and command line
//! written in the file, so a second run on the same folder stops at once and says who holds it
//! instead of interleaving two journals. The kernel drops the lock when the holder exits, however
//! it exits, so a killed run never leaves a stale lock behind. `.lock` is never opened through a
//! symbolic link ([`crate::runfolder`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Result, bail};

/// The lock file's name inside a run folder.
pub const FILE: &str = ".lock";

/// Held for the life of the value; dropping it (or exiting) releases the folder.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// Create `dir` if needed and lock it, or fail naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        // Never through a link: a `.lock` someone linked to another file must not truncate it.
        let mut file = crate::runfolder::open(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(|e| anyhow::anyhow!("cannot lock {}: {e:#}", dir.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                bail!(
                    "{} is in use by another lsmtune run ({}); wait for it to end, or pick another --out",
                    dir.display(),
                    if holder.is_empty() {
                        "process unknown"
                    } else {
                        holder
                    }
                );
            }
            Err(TryLockError::Error(e)) => bail!("cannot lock {}: {e}", dir.display()),
        }
        // Credentials in a URL argument (`--openai-base-url http://user:pass@host`) stay out.
        let args: Vec<String> = std::env::args()
            .map(|a| crate::http::without_userinfo(&a))
            .collect();
        let me = format!("pid {}: {}", std::process::id(), args.join(" "));
        // Best effort: the lock itself is what excludes; the text only names the holder.
        let _ = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()));
        Ok(RunLock { file })
    }
}

impl Drop for RunLock {
    /// Unlock explicitly rather than by closing: a child that another thread is spawning holds
    /// a copy of every descriptor until it execs, and a `flock` lock lives as long as any copy
    /// of its open file, so closing alone could leave the folder locked for a moment after
    /// the run let go. Unlocking releases it whatever copies exist.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another lsmtune run"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }

    /// A `.lock` that is a link to someone's file is refused, and the file is left as it was.
    #[test]
    fn a_lock_file_linked_elsewhere_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(FILE)).unwrap();
        let err = format!("{:#}", RunLock::acquire(&out).unwrap_err());
        assert!(err.contains(".lock is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    /// A child forked while the lock is held keeps a copy of its descriptor (here for half a
    /// second, as a child spawned by another thread does until it execs); the folder is free
    /// the moment the run lets go all the same.
    #[test]
    fn a_released_lock_is_free_at_once_although_a_forked_child_holds_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        // SAFETY: the child calls only async-signal-safe functions (usleep, _exit).
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            unsafe {
                libc::usleep(500_000);
                libc::_exit(0);
            }
        }
        drop(first);
        let again = RunLock::acquire(dir.path());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        again.unwrap();
    }
}
