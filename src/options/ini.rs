//! Reading and writing RocksDB OPTIONS files of any version.
//!
//! The format is INI with RocksDB's own extensions: `[Section "argument"]` headers, `#` comments
//! anywhere on a line (a `\#` is an escaped hash, not a comment), nested `{...}` values, and
//! backslash escapes inside values. Lines may end in CRLF. Nothing is interpreted here beyond the
//! syntax: every key of every section is kept verbatim and in order, so a file can be written back
//! without losing what this RocksDB (or lsmtune's catalog) does not know.

use std::fmt::Write as _;
use std::path::Path;

use thiserror::Error;

/// What a section header names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectionKind {
    /// `[Version]`
    Version,
    /// `[DBOptions]`
    Db,
    /// `[CFOptions "name"]`
    Cf(String),
    /// `[TableOptions/<Factory> "name"]`, e.g. `BlockBasedTable`.
    Table { factory: String, cf: String },
    /// Anything else, kept as written between the brackets.
    Other(String),
}

impl SectionKind {
    /// The header text between `[` and `]`.
    pub fn header(&self) -> String {
        match self {
            SectionKind::Version => "Version".into(),
            SectionKind::Db => "DBOptions".into(),
            SectionKind::Cf(name) => format!("CFOptions \"{name}\""),
            SectionKind::Table { factory, cf } => format!("TableOptions/{factory} \"{cf}\""),
            SectionKind::Other(s) => s.clone(),
        }
    }

    fn parse(header: &str) -> SectionKind {
        let header = header.trim();
        let (title, arg) = match header.find('"') {
            Some(i) => {
                let rest = &header[i + 1..];
                let arg = rest.strip_suffix('"').unwrap_or(rest);
                (header[..i].trim(), Some(arg.to_string()))
            }
            None => (header, None),
        };
        match (title, arg) {
            ("Version", None) => SectionKind::Version,
            ("DBOptions", None) => SectionKind::Db,
            ("CFOptions", Some(name)) => SectionKind::Cf(name),
            (t, Some(cf)) if t.starts_with("TableOptions/") => SectionKind::Table {
                factory: t["TableOptions/".len()..].to_string(),
                cf,
            },
            _ => SectionKind::Other(header.to_string()),
        }
    }
}

/// One `[...]` section and its `key=value` entries in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: SectionKind,
    pub entries: Vec<(String, String)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Replace the value of `key` (all occurrences collapse to one) or append it.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(pos) = self.entries.iter().position(|(k, _)| k == key) {
            self.entries[pos].1 = value.to_string();
            let mut i = pos + 1;
            while i < self.entries.len() {
                if self.entries[i].0 == key {
                    self.entries.remove(i);
                } else {
                    i += 1;
                }
            }
        } else {
            self.entries.push((key.to_string(), value.to_string()));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let mut removed = None;
        self.entries.retain(|(k, v)| {
            if k == key {
                removed = Some(v.clone());
                false
            } else {
                true
            }
        });
        removed
    }
}

/// A parsed OPTIONS file: its sections in order, and comment lines dropped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionsDoc {
    pub sections: Vec<Section>,
}

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Remove a trailing comment: the first `#` not escaped by a backslash.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'#' {
            return &line[..i];
        }
    }
    line
}

/// Undo RocksDB's value escapes (`\\`, `\:`, `\#`, `\n`, `\r`).
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl OptionsDoc {
    /// Parse the text of an OPTIONS file. Keys outside any section, lines without `=`,
    /// unterminated headers and unbalanced braces are errors; everything else is kept.
    pub fn parse(text: &str) -> Result<OptionsDoc, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut doc = OptionsDoc::default();
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = strip_comment(raw.strip_suffix('\r').unwrap_or(raw)).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(header) = rest.strip_suffix(']') else {
                    return Err(ParseError {
                        line: lineno,
                        message: format!("section header without closing ']': {}", clip(line)),
                    });
                };
                let kind = SectionKind::parse(header);
                if !matches!(kind, SectionKind::Other(_))
                    && doc.sections.iter().any(|s| s.kind == kind)
                {
                    return Err(ParseError {
                        line: lineno,
                        message: format!(
                            "section [{}] appears a second time (RocksDB refuses such a file; merge the two)",
                            clip(header)
                        ),
                    });
                }
                doc.sections.push(Section {
                    kind,
                    entries: Vec::new(),
                });
                continue;
            }
            let Some(eq) = line.find('=') else {
                return Err(ParseError {
                    line: lineno,
                    message: format!("expected `key=value`, found: {}", clip(line)),
                });
            };
            let key = line[..eq].trim();
            let value = line[eq + 1..].trim();
            if key.is_empty() {
                return Err(ParseError {
                    line: lineno,
                    message: "empty option name".into(),
                });
            }
            let mut depth: i64 = 0;
            for c in value.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth < 0 {
                    break;
                }
            }
            if depth != 0 {
                return Err(ParseError {
                    line: lineno,
                    message: format!("unbalanced braces in the value of `{}`", clip(key)),
                });
            }
            let Some(section) = doc.sections.last_mut() else {
                return Err(ParseError {
                    line: lineno,
                    message: format!("`{}` appears before any [section]", clip(key)),
                });
            };
            section.entries.push((key.to_string(), value.to_string()));
        }
        Ok(doc)
    }

    /// Read and parse a file (a regular file of at most [`crate::input::OPTIONS_FILE_MAX`]
    /// bytes); errors name the path.
    pub fn read(path: &Path) -> anyhow::Result<OptionsDoc> {
        let bytes = crate::input::read(path, "OPTIONS file", crate::input::OPTIONS_FILE_MAX)
            .map_err(|e| anyhow::anyhow!(e))?;
        OptionsDoc::decode(path, bytes)
    }

    /// Parse the bytes read from `path`; errors name the path.
    pub fn decode(path: &Path, bytes: Vec<u8>) -> anyhow::Result<OptionsDoc> {
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
        OptionsDoc::parse(&text)
            .map_err(|e| anyhow::anyhow!("{} is not an OPTIONS file: {e}", path.display()))
    }

    pub fn section(&self, kind: &SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| &s.kind == kind)
    }

    pub fn section_mut(&mut self, kind: &SectionKind) -> Option<&mut Section> {
        self.sections.iter_mut().find(|s| &s.kind == kind)
    }

    /// The section, created in RocksDB's required order when missing: Version, DBOptions,
    /// then each CF followed by its table options.
    pub fn section_or_insert(&mut self, kind: &SectionKind) -> &mut Section {
        if let Some(pos) = self.sections.iter().position(|s| &s.kind == kind) {
            return &mut self.sections[pos];
        }
        let pos = match kind {
            SectionKind::Version => 0,
            SectionKind::Db => self
                .sections
                .iter()
                .position(|s| s.kind != SectionKind::Version)
                .unwrap_or(self.sections.len()),
            SectionKind::Table { cf, .. } => self
                .sections
                .iter()
                .position(|s| s.kind == SectionKind::Cf(cf.clone()))
                .map(|p| p + 1)
                .unwrap_or(self.sections.len()),
            SectionKind::Cf(name) if name == "default" => self
                .sections
                .iter()
                .position(|s| matches!(s.kind, SectionKind::Cf(_) | SectionKind::Table { .. }))
                .unwrap_or(self.sections.len()),
            _ => self.sections.len(),
        };
        self.sections.insert(
            pos,
            Section {
                kind: kind.clone(),
                entries: Vec::new(),
            },
        );
        &mut self.sections[pos]
    }

    pub fn get(&self, kind: &SectionKind, key: &str) -> Option<&str> {
        self.section(kind).and_then(|s| s.get(key))
    }

    pub fn set(&mut self, kind: &SectionKind, key: &str, value: &str) {
        self.section_or_insert(kind).set(key, value);
    }

    /// The `rocksdb_version` of the `[Version]` section, if any.
    pub fn rocksdb_version(&self) -> Option<&str> {
        self.get(&SectionKind::Version, "rocksdb_version")
    }

    /// The column families named by `[CFOptions "..."]` sections, in order.
    pub fn column_families(&self) -> Vec<&str> {
        self.sections
            .iter()
            .filter_map(|s| match &s.kind {
                SectionKind::Cf(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Render as an OPTIONS file (LF line ends, two-space indent, RocksDB's layout).
    pub fn render(&self, header_comment: &str) -> String {
        let mut out = String::new();
        for line in header_comment.lines() {
            let _ = writeln!(out, "# {line}");
        }
        if !header_comment.is_empty() {
            out.push('\n');
        }
        for section in &self.sections {
            let _ = writeln!(out, "[{}]", section.kind.header());
            for (k, v) in &section.entries {
                let _ = writeln!(out, "  {k}={v}");
            }
            out.push('\n');
        }
        out
    }

    /// Write the rendered file atomically (temporary file in the same folder, then rename), so
    /// an interrupted write never leaves a half file where a good one was.
    pub fn write(&self, path: &Path, header_comment: &str) -> anyhow::Result<()> {
        write_atomic(path, self.render(header_comment).as_bytes())
    }
}

/// At most 120 characters of input echoed into a message (the one clip of every input file).
pub use crate::input::clip;

/// Write bytes to `path` the way a user expects of an output file.
///
/// A regular file (or a new one) is replaced atomically: a temporary sibling, synced, then
/// renamed over it, so an interrupted write never leaves half a file where a good one was. The
/// new file gets the mode the old one had, or 0666 under the umask (0644 usually), never the
/// temporary file's 0600. A symbolic link is followed: the file it names is written and the
/// link stays. Anything that is not a regular file (`/dev/null`, a FIFO, a terminal) is written
/// through, never replaced; a folder is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let target = resolve_links(path);
    let keep_mode = match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => anyhow::bail!("cannot write {}: it is a folder", path.display()),
        Ok(m) if !m.is_file() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.flush())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            return Ok(());
        }
        Ok(m) => Some(m.permissions()),
        Err(_) => None,
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lsmtune-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| anyhow::anyhow!("cannot write in {}: {e}", dir.display()))?;
    if let Some(mode) = keep_mode {
        tmp.as_file()
            .set_permissions(mode)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    tmp.persist(&target)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

/// The newest `OPTIONS-NNNNNN` file of a database folder.
pub fn latest_options(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u64 = name.strip_prefix("OPTIONS-")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// The OPTIONS file a `--base` or `--options` flag names: the file itself, or a RocksDB database
/// folder's newest `OPTIONS-NNNNNN` (the database is never opened); `flag` names the flag in
/// the error for a folder without one.
pub fn options_file(flag: &str, path: &Path) -> anyhow::Result<std::path::PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    latest_options(path).ok_or_else(|| {
        anyhow::anyhow!(
            "{flag} {}: a folder without an OPTIONS-* file (not a RocksDB database?)",
            path.display()
        )
    })
}

/// The path a chain of symbolic links ends at (the path itself when it is not a link); a
/// dangling link resolves to the path it names, so writing creates that file.
pub(crate) fn resolve_links(path: &Path) -> std::path::PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(to) if to.is_absolute() => p = to,
                Ok(to) => p = p.parent().unwrap_or(Path::new(".")).join(to),
                Err(_) => break,
            },
            _ => break,
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\n[Version]\n  rocksdb_version=8.8.1\n\n[DBOptions]\n  max_background_jobs=2 # trailing\n  wal_dir=\n[CFOptions \"default\"]\n  compaction_options_fifo={allow_compaction=false;age_for_warm=0;}\n  compression_per_level=kNoCompression:kSnappyCompression\n[TableOptions/BlockBasedTable \"default\"]\n  block_size=4096\n";

    #[test]
    fn parses_sections_entries_and_comments() {
        let doc = OptionsDoc::parse(SAMPLE).unwrap();
        assert_eq!(doc.sections.len(), 4);
        assert_eq!(doc.rocksdb_version(), Some("8.8.1"));
        assert_eq!(doc.get(&SectionKind::Db, "max_background_jobs"), Some("2"));
        assert_eq!(doc.get(&SectionKind::Db, "wal_dir"), Some(""));
        let cf = SectionKind::Cf("default".into());
        assert_eq!(
            doc.get(&cf, "compaction_options_fifo"),
            Some("{allow_compaction=false;age_for_warm=0;}")
        );
        let table = SectionKind::Table {
            factory: "BlockBasedTable".into(),
            cf: "default".into(),
        };
        assert_eq!(doc.get(&table, "block_size"), Some("4096"));
        assert_eq!(doc.column_families(), vec!["default"]);
    }

    #[test]
    fn crlf_and_bom_parse_like_lf() {
        let crlf = format!("\u{feff}{}", SAMPLE.replace('\n', "\r\n"));
        assert_eq!(
            OptionsDoc::parse(&crlf).unwrap(),
            OptionsDoc::parse(SAMPLE).unwrap()
        );
    }

    #[test]
    fn round_trip_is_lossless() {
        let doc = OptionsDoc::parse(SAMPLE).unwrap();
        let again = OptionsDoc::parse(&doc.render("written by a test")).unwrap();
        assert_eq!(doc, again);
    }

    #[test]
    fn escaped_hash_is_not_a_comment() {
        let doc = OptionsDoc::parse("[DBOptions]\n  db_log_dir=/a\\#b # real comment\n").unwrap();
        assert_eq!(doc.get(&SectionKind::Db, "db_log_dir"), Some("/a\\#b"));
        assert_eq!(unescape("/a\\#b\\:c\\\\"), "/a#b:c\\");
        assert_eq!(unescape("x\\:\\#\\\\\\n"), "x:#\\\n");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = OptionsDoc::parse("[DBOptions]\nno equals sign\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            OptionsDoc::parse("key=1\n")
                .unwrap_err()
                .message
                .contains("before any")
        );
        assert!(OptionsDoc::parse("[DBOptions\n").is_err());
        assert!(OptionsDoc::parse("[DBOptions]\nx={a=1\n").is_err());
    }

    #[test]
    fn set_replaces_and_missing_sections_go_in_rocksdb_order() {
        let mut doc = OptionsDoc::default();
        let table = SectionKind::Table {
            factory: "BlockBasedTable".into(),
            cf: "default".into(),
        };
        doc.set(&table, "block_size", "8192");
        doc.set(&SectionKind::Cf("default".into()), "write_buffer_size", "1");
        doc.set(&SectionKind::Db, "max_background_jobs", "4");
        doc.set(&SectionKind::Version, "rocksdb_version", "11.8.1");
        doc.set(&SectionKind::Db, "max_background_jobs", "6");
        let kinds: Vec<String> = doc.sections.iter().map(|s| s.kind.header()).collect();
        assert_eq!(
            kinds,
            vec![
                "Version",
                "DBOptions",
                "CFOptions \"default\"",
                "TableOptions/BlockBasedTable \"default\""
            ]
        );
        assert_eq!(doc.get(&SectionKind::Db, "max_background_jobs"), Some("6"));
        assert_eq!(doc.sections[1].entries.len(), 1);
    }

    #[test]
    fn a_repeated_section_is_an_error_and_long_input_is_not_echoed_whole() {
        let twice =
            "[DBOptions]\n  a=1\n[CFOptions \"default\"]\n  b=2\n[CFOptions \"default\"]\n  c=3\n";
        let e = OptionsDoc::parse(twice).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("second time"), "{}", e.message);
        let long = format!("[DBOptions]\n{}\n", "x".repeat(1 << 20));
        let e = OptionsDoc::parse(&long).unwrap_err();
        assert!(e.message.len() < 300, "{}", e.message.len());
        assert!(e.message.contains("1048576 bytes"), "{}", e.message);
    }
}
