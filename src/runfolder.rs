//! The files inside a run folder (`tune --out DIR`, `compare --out DIR`): `.lock`,
//! `journal.jsonl`, the OPTIONS files, `candidates/`, `prompts/`, reports, plots, `results.*`,
//! `runs/` and `baselines/`. A run folder often lives in a shared place (`/tmp`), where someone
//! else can put a symbolic link under one of these names before the run: a link there is never
//! followed. Files are opened with `O_NOFOLLOW` and must be regular files; files are replaced by a
//! temporary sibling renamed over them (a rename replaces a link, never writes through it), and a
//! link or anything else that is not a regular file in their place is refused; sub-folders must
//! be real folders. Every refusal is one line naming the file.
//!
//! Single files the user names (`options calibrate --out FILE`, `--json=FILE`) are not run
//! folders: they follow links as [`crate::options::ini::write_atomic`] says.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use crate::options::OptionsDoc;

/// What a path in a run folder is, when it is not a regular file: "a symbolic link", "a
/// folder", "a FIFO", ...
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The one-line refusal of `path`, which is `what` (a link, a folder, ...).
fn refusal(path: &Path, what: &str) -> anyhow::Error {
    anyhow!(
        "{} is {what}, not a file lsmtune wrote: a run folder's files are never followed \
         through links or written through (remove it, or pick another --out)",
        path.display()
    )
}

/// Open `path` as `opts` asks, without following a symbolic link in its last component and
/// without blocking on a FIFO; anything but a regular file is refused, naming the file.
pub fn open(path: &Path, opts: &mut OpenOptions) -> Result<File> {
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refusal(path, "a symbolic link"),
            Some(libc::EISDIR) => refusal(path, "a folder"),
            _ => anyhow!("cannot open {}: {e}", path.display()),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(refusal(path, kind(meta.file_type())));
    }
    Ok(file)
}

/// The bytes of the regular file `path` (never through a link); `Ok(None)` when it does not
/// exist.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    read(path).map(Some)
}

/// The bytes of the regular file `path`, never read through a link.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut file = open(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

/// The OPTIONS file `path` of a run folder, parsed; never read through a link.
pub fn read_options(path: &Path) -> Result<OptionsDoc> {
    OptionsDoc::decode(path, read(path)?)
}

/// Write `doc` as the run folder's OPTIONS file `path` ([`write`]).
pub fn write_options(doc: &OptionsDoc, path: &Path, header_comment: &str) -> Result<()> {
    write(path, doc.render(header_comment).as_bytes())
}

/// Whether `path` is a regular file (a link to one is not).
pub fn is_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// Whether `path` is a real folder (a link to one is not).
pub fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Add `bytes` at the end of the run folder's file `path` (read, then [`write`] whole: never a
/// half-appended file).
pub fn append(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut all = read(path)?;
    all.extend_from_slice(bytes);
    write(path, &all)
}

/// Replace (or create) the run folder's file `path` with `bytes`: a temporary sibling, synced,
/// then renamed over it, so an interrupted write never leaves half a file. A link, a folder, a
/// FIFO or a device in its place is refused; an existing file keeps its mode, a new one gets
/// 0666 under the umask.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Some(m.permissions()),
        Ok(m) => return Err(refusal(path, kind(m.file_type()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot write {}: {e}", path.display()),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let named = |e: std::io::Error| anyhow!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".lsmtune-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| anyhow!("cannot write in {}: {e}", dir.display()))?;
    if let Some(mode) = mode {
        tmp.as_file().set_permissions(mode).map_err(named)?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(named)?;
    // rename(2) replaces whatever is at `path` now, a link put there meanwhile included, and
    // never writes through it.
    tmp.persist(path).map_err(|e| named(e.error))?;
    Ok(())
}

/// Make the folder `path` (its parent must exist), or check that it is a real folder: a link
/// or a file in its place is refused.
pub fn ensure_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) => Err(refusal(path, kind(m.file_type()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(path) {
            Ok(()) => Ok(()),
            // Made by someone else meanwhile: look again.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && is_dir(path) => Ok(()),
            Err(e) => bail!("cannot create {}: {e}", path.display()),
        },
        Err(e) => bail!("cannot create {}: {e}", path.display()),
    }
}

/// Every folder from `root` (which must exist) down to `path` inside it, made or checked by
/// [`ensure_dir`].
pub fn ensure_dirs(root: &Path, path: &Path) -> Result<()> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| anyhow!("{} is not inside {}", path.display(), root.display()))?;
    let mut p = root.to_path_buf();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(name) => p.push(name),
            _ => bail!(
                "{} is not a plain path inside {}",
                path.display(),
                root.display()
            ),
        }
        ensure_dir(&p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_link_in_a_run_folder_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "the user's own file").unwrap();
        let link = dir.path().join("report.md");
        symlink(&victim, &link).unwrap();
        let e = write(&link, b"lsmtune's report").unwrap_err().to_string();
        assert!(e.contains("report.md is a symbolic link"), "{e}");
        let e = read(&link).unwrap_err().to_string();
        assert!(e.contains("report.md is a symbolic link"), "{e}");
        let e = open(&link, OpenOptions::new().append(true).create(true))
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // A dangling link is not created through either.
        let dangling = dir.path().join("journal.jsonl");
        symlink(dir.path().join("made-by-lsmtune"), &dangling).unwrap();
        assert!(open(&dangling, OpenOptions::new().append(true).create(true)).is_err());
        assert!(!dir.path().join("made-by-lsmtune").exists());
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "the user's own file"
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(!is_file(&link) && is_file(&victim));
    }

    #[test]
    fn a_fifo_is_refused_at_once_and_a_linked_folder_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".lock");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read(&fifo).unwrap_err().to_string();
        assert!(e.contains(".lock is a FIFO"), "{e}");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, dir.path().join("candidates")).unwrap();
        let e = ensure_dir(&dir.path().join("candidates"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("candidates is a symbolic link"), "{e}");
        let e = ensure_dirs(dir.path(), &dir.path().join("candidates/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        ensure_dirs(dir.path(), &dir.path().join("runs/a/b")).unwrap();
        assert!(is_dir(&dir.path().join("runs/a/b")));
    }

    #[test]
    fn a_file_is_replaced_whole_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.md");
        write(&p, b"one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(read_if_exists(&dir.path().join("none")).unwrap(), None);
    }
}
