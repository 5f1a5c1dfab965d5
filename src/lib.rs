//! lsmtune: closed-loop RocksDB tuning.
//!
//! Module map (the table of contents):
//! - [`options`]: the option catalog, OPTIONS files, the calibrator, RocksDB's verdict.
//! - [`bounds`]: the one table of limits every number from a flag or a file is checked against.
//! - [`bench`]: measuring configurations (in-process runner, isolated workers, db_bench, statistics).
//! - [`llm`]: language models behind one trait (local backend on the own forward pass or candle, chat templates, test models).
//! - [`grammar`]: the proposal schema from the catalog, and constrained decoding with llguidance.
//! - [`tune`]: the tuning loop, proposers (LLM, expert, value search, the hybrid of a model
//!   steering the search, random), the knowledge base, what a model is told (`tune::prompt`) and
//!   one proposal from it (`tune::ask`), journal and resume, report.
//! - [`export`]: a tune's changes in the forms services deploy (C++, Java, Rust, Go, TiKV,
//!   kvrocks, MyRocks, OPTIONS fragment), each line with its measured gain.
//! - [`verify`]: whether a tune's gain holds at production scale (more data, a worker held
//!   below it), the tuned and the start side by side.
//! - [`compare`]: proposers × workloads × seeds, one table and one plot.
//! - [`chart`]: what the plots share: readable ratio labels, a legend beside the data.
//! - [`runfolder`]: the files inside a run folder, never followed through links.
//! - [`sysinfo`]: facts about the machine.
//! - [`rng`]: the one seeded random number generator.
//! - [`scratch`]: scratch folders lsmtune makes for itself, each naming its owner, and the sweep
//!   that removes those of owners provably dead.
//! - [`input`]: every file a user hands lsmtune, read one way (regular files only, size caps,
//!   clipped echoes).
//! - [`interrupt`]: Ctrl-C and SIGTERM as a clean stop; children die with their parent.
//! - [`http`]: every network call (Hugging Face downloads, OpenAI-compatible endpoints).
//! - [`cli`]: the command line.

pub mod bench;
pub mod bounds;
pub mod chart;
pub mod cli;
pub mod compare;
pub mod export;
pub mod grammar;
pub mod history;
pub mod http;
pub mod input;
pub mod interrupt;
pub mod llm;
pub mod options;
pub mod rng;
pub mod runfolder;
pub mod scratch;
pub mod sysinfo;
pub mod tune;
pub mod verify;
