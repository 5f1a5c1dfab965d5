//! `lsmtune export`: what a tune changed, in the form a service deploys (see [`crate::export`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::export::{self, Format, Inputs};

// The arguments; the help text is on `Command::Export` in cli/mod.rs.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tuned OPTIONS file (with --run: default DIR/OPTIONS-tuned.ini).
    pub file: Option<PathBuf>,
    /// What to compare against (default: the run folder's OPTIONS-base.ini with --run, else the
    /// linked RocksDB's defaults).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// A tune's run folder: its OPTIONS files and report.json (for the gain of each option).
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// cpp, java, rust, go, tikv, kvrocks, myrocks or ini.
    #[arg(long, value_parser = Format::parse)]
    pub format: Format,
    /// Only what this RocksDB version knows (e.g. 7.8); a newer option is an error.
    #[arg(long, value_name = "X.Y")]
    pub rocksdb_version: Option<String>,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let inputs = Inputs {
        tuned: args.file.clone(),
        base: args.base.clone(),
        run: args.run.clone(),
    };
    if let Some(out) = &args.out {
        let mut named: Vec<PathBuf> = [&args.file, &args.base]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(dir) = &args.run {
            named.push(dir.join(crate::tune::TUNED_FILE));
            named.push(dir.join(crate::tune::BASE_FILE));
            named.push(dir.join("report.json"));
        }
        let named: Vec<&std::path::Path> = named.iter().map(|p| p.as_path()).collect();
        super::args::refuse_input_as_output("--out", out, &named)?;
    }
    let rendered = export::export(&inputs, args.format, args.rocksdb_version.as_deref())?;
    for s in &rendered.not_expressible {
        eprintln!("not expressible in {}: {s}", args.format.name());
    }
    match &args.out {
        Some(out) => {
            crate::options::ini::write_atomic(out, rendered.text.as_bytes())?;
            eprintln!("wrote {}", out.display());
        }
        None => print!("{}", rendered.text),
    }
    Ok(())
}
