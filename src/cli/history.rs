//! `lsmtune history ...`: the tuning memory ([`crate::history`]): list and show the past tunes,
//! export them as JSON lines and import a fleet's, and add finished run folders by hand.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::args::Json;
use crate::history::{self, Tune, store::Store};

/// Where the history is: `--history FILE`, else LSMTUNE_HISTORY, else the XDG data folder.
#[derive(Debug, Clone, Args)]
pub struct HistoryFile {
    /// The history file (default: $LSMTUNE_HISTORY, else $XDG_DATA_HOME/lsmtune/history.sqlite,
    /// i.e. ~/.local/share/lsmtune/history.sqlite).
    #[arg(long = "history", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

impl HistoryFile {
    fn location(&self) -> Result<PathBuf> {
        history::location(self.path.as_deref()).ok_or_else(|| {
            anyhow::anyhow!(
                "the history is turned off ({}=off); name one with --history FILE",
                history::ENV
            )
        })
    }

    /// The history to read: an error naming the file when there is none yet.
    fn existing(&self) -> Result<Store> {
        let path = self.location()?;
        if !path.exists() {
            bail!(
                "no history at {} yet: a finished `lsmtune tune` records itself there (or \
                 `lsmtune history add RUN_DIR`, `lsmtune history import FILE`)",
                path.display()
            );
        }
        Store::open(&path)
    }
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Every past tune: id, date, workload, objective, final gain, machine, proposer.
    ///
    /// Examples:
    ///   lsmtune history list
    ///   lsmtune history list --workload readrandom --json | jq '.[].best'
    #[command(verbatim_doc_comment)]
    List {
        /// Only tunes of this workload (its name, as `tune --workload` or a workload file's).
        #[arg(long)]
        workload: Option<String>,
        #[command(flatten)]
        file: HistoryFile,
        #[command(flatten)]
        json: Json,
    },
    /// One past tune: its machine, workload, every measured change with its interval, and
    /// what it kept. ID is the id `list` shows, or a unique start of it.
    Show {
        id: String,
        #[command(flatten)]
        file: HistoryFile,
        #[command(flatten)]
        json: Json,
    },
    /// Write every past tune as JSON lines (one tune per line), to share with a fleet.
    ///
    /// Examples:
    ///   lsmtune history export --out /shared/lsmtune/$(hostname).jsonl
    ///   lsmtune history export | aws s3 cp - s3://bucket/lsmtune/host1.jsonl
    #[command(verbatim_doc_comment)]
    Export {
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        file: HistoryFile,
    },
    /// Add the tunes of JSON-lines files (`history export`'s) to the history; a tune already
    /// there is skipped, a line that is not a tune is named and skipped.
    ///
    /// Examples:
    ///   lsmtune history import /shared/lsmtune/*.jsonl
    #[command(verbatim_doc_comment)]
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        file: HistoryFile,
    },
    /// Record finished tunes' run folders (a tune records itself when it finishes; this is
    /// for folders from before the history, or from `tune --no-history`).
    Add {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[command(flatten)]
        file: HistoryFile,
    },
}

pub fn run(cmd: HistoryCommand) -> Result<()> {
    match cmd {
        HistoryCommand::List {
            workload,
            file,
            json,
        } => {
            let store = file.existing()?;
            let (mut tunes, warnings) = store.all()?;
            for w in &warnings {
                tracing::warn!("{w}");
            }
            if let Some(w) = &workload {
                tunes.retain(|t| &t.workload.label == w);
            }
            if json.emit(&tunes)? {
                return Ok(());
            }
            println!("{} past tune(s) in {}", tunes.len(), store.path().display());
            for t in &tunes {
                println!("{}", t.line());
            }
            Ok(())
        }
        HistoryCommand::Show { id, file, json } => {
            let store = file.existing()?;
            let Some(t) = store.get(&id)? else {
                bail!(
                    "no tune's id starts with {} in {} (see `lsmtune history list`)",
                    crate::input::clip(&id),
                    store.path().display()
                );
            };
            if json.emit(&t)? {
                return Ok(());
            }
            print!("{}", describe(&t));
            Ok(())
        }
        HistoryCommand::Export { out, file } => {
            let store = file.existing()?;
            let (tunes, warnings) = store.all()?;
            for w in &warnings {
                tracing::warn!("{w}");
            }
            let mut body = String::new();
            for t in &tunes {
                body.push_str(&serde_json::to_string(t)?);
                body.push('\n');
            }
            match out {
                Some(p) => {
                    if p == store.path() {
                        bail!("--out {} is the history itself", p.display());
                    }
                    crate::options::ini::write_atomic(&p, body.as_bytes())?;
                    eprintln!("wrote {} tune(s) to {}", tunes.len(), p.display());
                }
                None => std::io::stdout().write_all(body.as_bytes())?,
            }
            Ok(())
        }
        HistoryCommand::Import { files, file } => {
            let path = file.location()?;
            let mut store = Store::open(&path)?;
            let (mut added, mut known, mut bad) = (0, 0, 0);
            for f in &files {
                let (tunes, errors) = read_lines(f)?;
                for e in &errors {
                    eprintln!("warning: {e}");
                }
                bad += errors.len();
                for t in tunes {
                    if store.insert(&t)? {
                        added += 1;
                    } else {
                        known += 1;
                    }
                }
            }
            eprintln!(
                "imported {added} tune(s) into {} ({known} already there, {bad} line(s) skipped)",
                path.display()
            );
            if added + known == 0 && bad > 0 {
                bail!("no line of the file(s) was a tune lsmtune exported");
            }
            Ok(())
        }
        HistoryCommand::Add { runs, file } => {
            let path = file.location()?;
            for r in &runs {
                let (t, new) = crate::tune::warm::record(&path, r)?;
                eprintln!(
                    "{} {} ({}, {}) {} {}",
                    if new { "added" } else { "already there:" },
                    r.display(),
                    crate::input::clip(&t.workload.label),
                    t.result(),
                    if new { "as" } else { "" },
                    t.id
                );
            }
            Ok(())
        }
    }
}

/// The tunes of a JSON-lines file, and a message for each line that is not one (numbered).
/// A file that cannot be read at all is an error naming it.
fn read_lines(f: &Path) -> Result<(Vec<Tune>, Vec<String>)> {
    let file =
        std::fs::File::open(f).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
    let (mut tunes, mut errors) = (Vec::new(), Vec::new());
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("{} line {}: {e}", f.display(), n + 1));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Tune>(&line)
            .map_err(|e| e.to_string())
            .and_then(|t| t.check().map(|()| t))
        {
            Ok(t) => tunes.push(t),
            Err(e) => errors.push(format!(
                "{} line {}: not a tune lsmtune exported ({})",
                f.display(),
                n + 1,
                crate::input::clip(&e)
            )),
        }
    }
    Ok((tunes, errors))
}

/// `history show`'s text.
fn describe(t: &Tune) -> String {
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    let mut s = format!(
        "tune {} of {} ({}), recorded {} by lsmtune {}\n",
        t.id,
        crate::input::clip(&t.workload.label),
        t.workload.describe(),
        history::date(t.recorded),
        t.version
    );
    s.push_str(&format!(
        "machine: {} (class {}), RocksDB {}\nobjective: {}; proposer: {}; {} iteration(s) in {:.0} s\n",
        t.machine.describe(),
        t.machine.fingerprint,
        t.machine.rocksdb,
        t.objective,
        crate::input::clip(&t.proposer),
        t.iterations,
        t.elapsed_secs
    ));
    if let Some(src) = &t.source {
        s.push_str(&format!("from: {src}\n"));
    }
    s.push_str(&format!("result: {}\n", t.result()));
    for (k, v) in &t.best {
        s.push_str(&format!("  kept {k} = {v}\n"));
    }
    s.push_str("measured:\n");
    for st in &t.steps {
        let changes: Vec<String> = st.changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(
            "  {:>3} {:<9} {} [{}, {}]  {}\n",
            st.iteration,
            if st.kept { "kept" } else { "not kept" },
            pct(st.effect),
            pct(st.low),
            pct(st.high),
            changes.join(", ")
        ));
    }
    s
}
