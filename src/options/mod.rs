//! The option space of the linked RocksDB, layered without cycles: option values, byte units and
//! their display (`value`), option specs (`spec`), how each option is read and written in an
//! OPTIONS document (`access`, over `ini` and `value`), the catalog of specs resolved against the
//! linked RocksDB's defaults (`catalog`), typed configurations (`config`), proposal parsing
//! (`proposal`), the calibrator (`calibrate`), making a file acceptable to an older RocksDB
//! (`compat`), and (in `rocks`, the only FFI here) RocksDB's own verdict.

pub mod access;
pub mod calibrate;
pub mod catalog;
pub mod compat;
pub mod config;
pub mod ini;
pub mod proposal;
pub mod rocks;
pub mod spec;
pub mod value;

use anyhow::Result;

pub use calibrate::{CalibrateOptions, Calibrated, Calibrator, Correction, Rule};
pub use catalog::Catalog;
pub use config::Config;
pub use ini::OptionsDoc;

/// The catalog resolved against the linked RocksDB (computed once per process).
pub fn catalog() -> Result<&'static Catalog> {
    use std::sync::OnceLock;
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    if let Some(c) = CATALOG.get() {
        return Ok(c);
    }
    let defaults = rocks::linked_defaults()?;
    Ok(CATALOG.get_or_init(|| Catalog::from_defaults(defaults)))
}

/// The linked RocksDB's default configuration.
pub fn default_config() -> Result<Config> {
    Ok(Config::new(rocks::linked_defaults()?.clone()))
}
