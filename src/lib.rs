//! lsmtune: closed-loop RocksDB tuning.
//!
//! Module map (the table of contents):
//! - [`options`]: the option catalog, OPTIONS files, the calibrator, RocksDB's verdict.
//! - [`bench`]: measuring configurations (for now: the external db_bench as a file checker).
//! - [`llm`]: language models behind one trait (local candle backend, chat templates, test models).
//! - [`sysinfo`]: facts about the machine.
//! - [`cli`]: the command line.

pub mod bench;
pub mod cli;
pub mod llm;
pub mod options;
pub mod sysinfo;
