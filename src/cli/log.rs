//! What lsmtune says on standard error besides its results, and how much: `-q` (warnings and
//! errors only, no progress bars), the default (plus notes such as "loaded ... in 1.2 s"), `-v`
//! (plus lsmtune's debug lines: each HTTP request and retry, each benchmark run and worker, model
//! and grammar loading), `-vv` (plus the debug lines of the libraries: the HTTP client,
//! tokenizers, hf-hub). `RUST_LOG` (e.g. `RUST_LOG=lsmtune=trace,ureq=debug`) overrides the
//! level when set. Records of the `log` crate, which the libraries use, arrive here too.
//!
//! Notes print as plain lines, warnings as `warning: ...`, debug lines with their level and
//! module; errors are printed once, by [`super::main`], not through here.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The filter for `-v` repeated `verbose` times, or `-q`.
pub fn directives(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,lsmtune=info",
        (false, 1) => "info,lsmtune=debug",
        (false, 2) => "debug,lsmtune=trace",
        (false, _) => "trace",
    }
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `-q` was given: no progress bars or spinners.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Install the subscriber for this process (once; later calls do nothing).
pub fn init(verbose: u8, quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
    crate::http::show_download_bars(!quiet);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG={v:?} is not a valid filter ({e}); using the default");
            EnvFilter::new(directives(verbose, quiet))
        }),
        _ => EnvFilter::new(directives(verbose, quiet)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Plain)
        .try_init();
}

/// Notes as plain lines, warnings with `warning:`, debug and trace with level and module.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let m = event.metadata();
        match *m.level() {
            Level::INFO => {}
            Level::WARN => write!(w, "warning: ")?,
            Level::ERROR => write!(w, "error: ")?,
            l => write!(w, "{} {}: ", l.as_str().to_ascii_lowercase(), m.target())?,
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>()
                    && !f.is_empty()
                {
                    write!(w, "[{} {f}] ", span.name())?;
                }
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_lets_through_what_it_promises() {
        // Parsed as filters, and more verbose means a longer list of lsmtune levels.
        for (v, q) in [(0, false), (1, false), (2, false), (3, false), (0, true)] {
            EnvFilter::try_new(directives(v, q)).unwrap();
        }
        assert!(directives(0, true).starts_with("warn"));
        assert!(directives(0, false).contains("lsmtune=info"));
        assert!(directives(1, false).contains("lsmtune=debug"));
        assert_eq!(directives(9, false), "trace");
    }
}
