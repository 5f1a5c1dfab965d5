//! Files a user hands lsmtune (workload files, traces, OPTIONS files, a database's LOG, a
//! proposal, a `--baseline`), read one way: only a regular file is read (a FIFO, a device such
//! as `/dev/zero`, a socket or a folder is refused before a byte is read, so nothing blocks and
//! nothing is read until memory runs out), and at most a cap of bytes, generous for what the
//! file is (see the `*_MAX` constants). Input echoed into an error message is clipped
//! ([`clip`]), so a 50 MB line never comes back whole.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Largest workload file (TOML, JSON or YCSB properties) read: real ones are a few hundred bytes.
pub const WORKLOAD_FILE_MAX: u64 = 16 << 20;
/// Largest OPTIONS file read: RocksDB writes about 20 KB per column family.
pub const OPTIONS_FILE_MAX: u64 = 64 << 20;
/// Largest query trace read: the whole trace is held in memory (about three times its size).
pub const TRACE_MAX: u64 = 4 << 30;
/// Largest proposal (`options calibrate FILE`) or `--baseline` JSON read.
pub const SMALL_FILE_MAX: u64 = 16 << 20;
/// Longest line of a database's LOG that is looked at (longer lines are passed over); the LOG
/// itself is streamed line by line, so its size is not capped.
pub const LOG_LINE_MAX: usize = 1 << 20;

/// At most 120 characters of input echoed into a message (a 10 MB line once came back whole).
pub fn clip(text: &str) -> String {
    clip_to(text, 120)
}

/// At most `max` characters of `text`, then how long it was.
pub fn clip_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}... ({} bytes)", &text[..i], text.len()),
        None => text.to_string(),
    }
}

/// A parser's message about input (which may quote the input: an unknown key, a bad string)
/// clipped to 400 characters, room for the list of keys it expected.
pub fn clip_message(text: &str) -> String {
    clip_to(text, 400)
}

/// The line of `text` holding byte `at`, shown for an error: `line L, column C` and the line
/// clipped to 80 characters around the column, with a caret under it.
pub fn excerpt(text: &str, at: usize) -> (usize, usize, String) {
    const SIDE: usize = 40;
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line_no = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[start..end].trim_end_matches('\r');
    let col = text[start..at].chars().count();
    let from = col.saturating_sub(SIDE);
    let shown: String = line.chars().skip(from).take(2 * SIDE).collect();
    let (lead, caret) = if from > 0 {
        ("...", col - from + 3)
    } else {
        ("", col)
    };
    let tail = if line.chars().count() > from + 2 * SIDE {
        "..."
    } else {
        ""
    };
    let text = format!("  | {lead}{shown}{tail}\n  | {}^", " ".repeat(caret));
    (line_no, col + 1, text)
}

/// What a file that is not a regular file is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading when it is a regular file (after symbolic links); `what` names it in
/// errors (`workload file`, `trace`...). The file is opened without blocking (a FIFO with no
/// writer would otherwise hang here) and checked on the open descriptor, so nothing can swap a
/// FIFO in between the check and the read.
pub fn open(path: &Path, what: &str) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{what} {} is {}, not a regular file; give a file",
            path.display(),
            kind_of(meta.file_type())
        ));
    }
    Ok(file)
}

/// The bytes of the regular file `path`, at most `max` of them (a larger file is an error that
/// names the cap); `what` names the file in errors.
pub fn read(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, String> {
    let file = open(path, what)?;
    let too_big = |size: u64| {
        format!(
            "{what} {} is {}, more than the {} lsmtune reads for a {what}",
            path.display(),
            crate::options::value::human_bytes(size.min(i64::MAX as u64) as i64),
            crate::options::value::human_bytes(max as i64)
        )
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > max {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than the cap tells a file that grew past it while being read.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The text of the regular file `path` (UTF-8), at most `max` bytes; see [`read`].
pub fn read_text(path: &Path, what: &str, max: u64) -> Result<String, String> {
    String::from_utf8(read(path, what, max)?)
        .map_err(|e| format!("{what} {} is not UTF-8 text: {e}", path.display()))
}

/// Stream the lines of the regular file `path` to `each` (as text without the line end, `\n` or
/// `\r\n`, invalid UTF-8 replaced), with
/// memory bounded by `max_line`: a longer line is passed over unread. For files whose size has
/// no useful cap (a database's LOG grows for as long as the database runs).
pub fn for_each_line(
    path: &Path,
    what: &str,
    max_line: usize,
    mut each: impl FnMut(&str),
) -> Result<(), String> {
    use std::io::BufRead;
    let file = open(path, what)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| format!("{what} {}: {e}", path.display()))?;
        if buf.is_empty() {
            break;
        }
        let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long && line.len() + chunk.len() <= max_line {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        let used = end.unwrap_or(buf.len());
        reader.consume(used);
        if end.is_some() {
            if !too_long {
                let text = line.strip_suffix(b"\r").unwrap_or(&line);
                each(&String::from_utf8_lossy(text));
            }
            line.clear();
            too_long = false;
        }
    }
    if !too_long && !line.is_empty() {
        each(&String::from_utf8_lossy(&line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused_before_a_byte_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A FIFO with no writer: a plain open would block here forever.
        let e = read(&fifo, "trace", TRACE_MAX).unwrap_err();
        assert!(e.contains("a FIFO") && e.contains("trace"), "{e}");
        let e = read(Path::new("/dev/zero"), "workload file", WORKLOAD_FILE_MAX).unwrap_err();
        assert!(e.contains("a character device"), "{e}");
        let e = read(dir.path(), "OPTIONS file", OPTIONS_FILE_MAX).unwrap_err();
        assert!(e.contains("a folder"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(
            read(&link, "trace", TRACE_MAX)
                .unwrap_err()
                .contains("device")
        );
    }

    #[test]
    fn a_file_past_its_cap_is_refused_and_one_under_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.toml");
        std::fs::write(&p, vec![b'x'; 1000]).unwrap();
        assert_eq!(read(&p, "workload file", 1000).unwrap().len(), 1000);
        let e = read(&p, "workload file", 999).unwrap_err();
        assert!(e.contains("more than the 999 B"), "{e}");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(
            read_text(&p, "workload file", 10)
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// `read(fifo)`'s result. A reader that blocks in the FIFO (as every reader once did) is
    /// handed an empty stream by a writer that opens and closes it, so such a reader fails
    /// the caller's assertion instead of hanging the test.
    fn on_a_fifo<T: Send>(fifo: &Path, read: impl FnOnce(&Path) -> T + Send) -> T {
        use std::os::unix::fs::OpenOptionsExt;
        std::thread::scope(|s| {
            let reader = s.spawn(|| read(fifo));
            while !reader.is_finished() {
                // Opening for writing without blocking succeeds only while a reader has it open.
                let writer = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo);
                drop(writer);
                std::thread::yield_now();
            }
            reader.join().unwrap()
        })
    }

    #[test]
    fn every_reader_refuses_a_fifo_and_a_file_past_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = |name: &str| {
            let p = dir.path().join(name);
            mkfifo(&p);
            p
        };
        let e = on_a_fifo(&fifo("w.toml"), |p| {
            crate::bench::workload_file::load(p)
                .map(|_| ())
                .unwrap_err()
        });
        assert!(e.contains("w.toml is a FIFO"), "{e}");
        let e = on_a_fifo(&fifo("t.trace"), |p| {
            crate::bench::trace::read(p).map(|_| ()).unwrap_err()
        });
        assert!(e.contains("t.trace is a FIFO"), "{e}");
        let e = on_a_fifo(&fifo("OPTIONS-000005"), |p| {
            crate::options::OptionsDoc::read(p).unwrap_err().to_string()
        });
        assert!(e.contains("OPTIONS-000005 is a FIFO"), "{e}");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        std::fs::write(db.join("CURRENT"), "MANIFEST-000001\n").unwrap();
        mkfifo(&db.join("LOG"));
        let e = on_a_fifo(&db.join("LOG"), |_| {
            crate::bench::livedb::inspect(&db).map(|_| ()).unwrap_err()
        });
        assert!(e.contains("LOG is a FIFO"), "{e}");
        // A sparse file one byte past the cap: refused by its size, nothing read.
        let big = dir.path().join("big.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(WORKLOAD_FILE_MAX + 1)
            .unwrap();
        let e = crate::bench::workload_file::load(&big).unwrap_err();
        assert!(e.contains("more than the 16 MiB"), "{e}");
    }

    #[test]
    fn lines_stream_and_an_overlong_line_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("LOG");
        let text = format!("one\n{}\nthree\r\nfour", "x".repeat(5000));
        std::fs::write(&p, text).unwrap();
        let mut seen = Vec::new();
        for_each_line(&p, "LOG", 100, |l| seen.push(l.to_string())).unwrap();
        assert_eq!(seen, ["one", "three", "four"]);
        let e = for_each_line(Path::new("/dev/zero"), "LOG", 100, |_| {}).unwrap_err();
        assert!(e.contains("device"), "{e}");
    }

    #[test]
    fn an_excerpt_shows_the_line_around_the_column() {
        let (line, col, shown) = excerpt("a = 1\nnum = 1e18\n", 12);
        assert_eq!((line, col), (2, 7));
        assert_eq!(shown, "  | num = 1e18\n  |       ^");
        let long = format!("x = \"{}\" y", "z".repeat(1_000_000));
        let (_, col, shown) = excerpt(&long, long.len() - 1);
        assert_eq!(col, 1_000_008);
        assert!(
            shown.len() < 200 && shown.starts_with("  | ...") && shown.ends_with('^'),
            "{shown}"
        );
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(1000);
        let c = clip(&long);
        assert!(c.len() < 300 && c.ends_with("(2000 bytes)"), "{c}");
    }
}
