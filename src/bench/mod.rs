//! Measuring configurations: workloads with db_bench's names and YCSB A-F, the in-process
//! harness (isolated in a worker process), the external `db_bench` engine, and statistics over
//! repeats that decide whether a candidate is better, and the sequential design that decides how
//! many repeats a candidate gets.

pub mod db_bench;
pub mod engine;
pub mod generators;
pub mod inprocess;
pub mod livedb;
pub mod measure;
pub mod memlimit;
pub mod mix;
pub mod mixgraph;
pub mod replay;
pub mod rundir;
pub mod sample;
pub mod sampler;
pub mod sequential;
pub mod stats;
pub mod trace;
pub mod worker;
pub mod workload;
pub mod workload_file;

pub use engine::{BenchEngine, DbBench, InProcess};
pub use measure::Measurement;
pub use sample::{BenchRun, run_repeats};
pub use sample::{Sample, measure_interleaved};
pub use worker::{Limits, RunFailure};
pub use workload::{Kind, Workload};
