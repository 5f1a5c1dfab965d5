//! Ctrl-C and SIGTERM as a clean stop for long commands (`tune`, `compare`, `bench`).
//!
//! [`install`] replaces the default action of SIGINT and SIGTERM with a handler that only records
//! the signal. The measuring code polls [`requested`]: a running benchmark worker is killed, its
//! scratch folder removed as the stack unwinds, the interruption is written to the journal, and
//! the command exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM), the shell's
//! convention. A second signal while stopping takes the default action at once.
//!
//! Processes this one starts die with it even when it is killed outright (SIGKILL runs no
//! handler): the benchmark worker watches its parent (see `bench::worker`), db_bench gets
//! `PR_SET_PDEATHSIG`, and scratch folders carry their owner's pid so a later run removes the
//! ones whose owner is dead ([`crate::bench::engine::sweep_stale`]).
//!
//! A memory-mapped model file cut short by someone else while it is being read raises SIGBUS,
//! which would end the process as a crash: [`while_mapped`] turns that into one clear error line
//! and exit code 2.

use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use anyhow::Result;

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The stop a signal asked for, as an error that travels up to `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Interrupted {
    pub signal: i32,
}

impl Interrupted {
    /// The shell's exit code for a command ended by this signal.
    pub fn exit_code(&self) -> i32 {
        128 + self.signal
    }

    pub fn name(&self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.name())
    }
}

impl std::error::Error for Interrupted {}

extern "C" fn on_signal(sig: libc::c_int) {
    if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
        // The second signal: stop now, the default way.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    let msg: &[u8] = b"\nlsmtune: stopping (cleaning up, recording where it stopped); signal again to stop at once\n";
    // write(2) is async-signal-safe; the result does not matter here.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
    }
}

/// Catch SIGINT and SIGTERM from now on (for commands that poll [`requested`]).
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that asked this process to stop, if one did.
pub fn requested() -> Option<Interrupted> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(Interrupted { signal }),
    }
}

/// An error when a stop was asked for: `interrupt::check()?` at the points where stopping is safe.
pub fn check() -> Result<()> {
    match requested() {
        Some(i) => Err(i.into()),
        None => Ok(()),
    }
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), which with
/// the pid names a process uniquely: a reused pid has a later start.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The message [`on_sigbus`] prints: one leaked record per [`while_mapped`] call (a few bytes),
/// behind one pointer so the handler never pairs one call's text with another's length.
struct SigbusMsg {
    ptr: *const u8,
    len: usize,
}
static SIGBUS_MSG: AtomicPtr<SigbusMsg> = AtomicPtr::new(std::ptr::null_mut());
/// One guarded load at a time (loads are rare; the guard owns the process-wide handler).
static SIGBUS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

extern "C" fn on_sigbus(_sig: libc::c_int) {
    // Only async-signal-safe calls: write(2) and _exit(2).
    let m = SIGBUS_MSG.load(Ordering::SeqCst);
    unsafe {
        if !m.is_null() {
            libc::write(2, (*m).ptr as *const libc::c_void, (*m).len);
        }
        libc::_exit(2);
    }
}

/// Puts the previous SIGBUS action back however `f` ends (a panic included).
struct Restore(libc::sigaction);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restoring the action saved when the guard was made.
        unsafe {
            libc::sigaction(libc::SIGBUS, &self.0, std::ptr::null_mut());
        }
        SIGBUS_MSG.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

/// Run `f`, which reads memory-mapped files described by `what`; should one of them shrink
/// while it runs (another process truncating it), the SIGBUS this raises ends the process with
/// `error: <what> changed size while it was being read ...` and exit code 2 instead of a
/// crash. The previous SIGBUS action is restored afterwards, also when `f` panics. Calls from
/// several threads take turns; a call from inside `f` would wait forever (none does).
pub fn while_mapped<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let _turn = SIGBUS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let text: &'static [u8] = Box::leak(
        format!(
            "error: {what} changed size while it was being read (cut short by another program?); load it again once it is complete\n"
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let msg = Box::leak(Box::new(SigbusMsg {
        ptr: text.as_ptr(),
        len: text.len(),
    }));
    SIGBUS_MSG.store(msg, Ordering::SeqCst);
    // SAFETY: a plain sigaction install; the handler only calls write and _exit.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, &mut old);
    }
    let _restore = Restore(old);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sigbus_guard_puts_the_old_action_back_even_after_a_panic() {
        let current = || unsafe {
            let mut a: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut a);
            a.sa_sigaction
        };
        let before = current();
        let inside = while_mapped("m", current);
        assert_eq!(inside, on_sigbus as *const () as usize);
        assert_eq!(current(), before);
        let r = std::panic::catch_unwind(|| while_mapped("m", || panic!("in the load")));
        assert!(r.is_err());
        assert_eq!(current(), before);
        assert!(SIGBUS_MSG.load(Ordering::SeqCst).is_null());
    }

    #[test]
    fn own_start_time_is_known_and_a_dead_pid_has_none() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(u32::MAX - 1), None);
        assert_eq!(
            Interrupted {
                signal: libc::SIGTERM
            }
            .exit_code(),
            143
        );
    }
}
