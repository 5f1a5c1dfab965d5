//! Every integration test in one binary (each links RocksDB and candle once instead of once per
//! file): a module per area, sharing `common`. Run one area with
//! `cargo test --release --test lsmtune -- tuner::`, one test by its name.

mod bench;
mod calibrate;
mod cli;
mod common;
mod compare;
mod deploy;
mod export;
mod fixtures;
mod grammar;
mod history;
mod hostile_proposals;
mod hub;
mod llm;
mod openai;
mod real_models;
mod search;
mod servers;
mod stores;
mod transformer;
mod tune;
mod tuner;
mod verify;
mod workloads;
