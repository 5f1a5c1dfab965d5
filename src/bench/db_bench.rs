//! The external `db_bench` binary (Debian's rocksdb-tools ships 7.8.3): finding it, asking it
//! whether it loads an OPTIONS file, and producing a copy it accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::options::{OptionsDoc, compat, rocks::scratch_dir};

/// `--db-bench PATH`, else `db_bench` on PATH.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("db_bench not found at {}", p.display());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("db_bench");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "db_bench is not on PATH; install it (Debian: apt-get install rocksdb-tools) or pass --db-bench PATH"
    )
}

/// How long one probe of db_bench (`--version`, a one-key load) may take before it is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Run `cmd` to completion, or kill it after `timeout`: a db_bench that hangs must not hang
/// lsmtune. The output is collected through files (no pipe to fill and block on).
fn run_bounded(mut cmd: Command, timeout: Duration) -> std::result::Result<Output, String> {
    let dir = scratch_dir("db-bench-run").map_err(|e| e.to_string())?;
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    cmd.stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?);
    super::worker::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {}; it was stopped",
                    super::workload_file::human_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    Ok(Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    })
}

/// The version db_bench reports (`db_bench version 7.8.3`).
pub fn version(db_bench: &Path, timeout: Duration) -> Result<String> {
    let mut cmd = Command::new(db_bench);
    cmd.arg("--version");
    let out = run_bounded(cmd, timeout)
        .map_err(|e| anyhow::anyhow!("cannot run {} --version: {e}", db_bench.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .last()
        .map(str::to_string)
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .with_context(|| {
            format!(
                "{} --version printed no version: {text}",
                db_bench.display()
            )
        })
}

/// Does this db_bench load the document? Runs a one-key fillseq in a scratch folder.
pub fn accepts(
    db_bench: &Path,
    doc: &OptionsDoc,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let dir = scratch_dir("db-bench-probe").map_err(|e| e.to_string())?;
    let file = dir.path().join("OPTIONS-probe.ini");
    let doc = crate::options::rocks::without_deployment_paths(doc);
    std::fs::write(&file, doc.render("db_bench probe written by lsmtune"))
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(db_bench);
    cmd.arg("--benchmarks=fillseq")
        .arg("--num=1")
        .arg(format!("--db={}", dir.path().join("db").display()))
        .arg(format!("--options_file={}", file.display()));
    let out = run_bounded(cmd, timeout).map_err(|e| format!("{}: {e}", db_bench.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| {
            l.contains("Unable to load options")
                || l.contains("Invalid argument")
                || l.contains("Not implemented")
        })
        .unwrap_or_else(|| text.lines().next().unwrap_or("no output"));
    Err(line.to_string())
}

/// A copy of `doc` this db_bench accepts, with the settings it had to drop.
pub fn downgrade(
    db_bench: &Path,
    doc: &OptionsDoc,
    timeout: Duration,
) -> Result<compat::Downgraded> {
    let mut doc = doc.clone();
    let version = version(db_bench, timeout)?;
    doc.set(
        &crate::options::ini::SectionKind::Version,
        "rocksdb_version",
        &version,
    );
    // A probe that hangs is a failure of the whole downgrade, not a key to drop.
    let hung = std::cell::Cell::new(None);
    let result = compat::downgrade(
        &doc,
        |d| match accepts(db_bench, d, timeout) {
            // Stop the search at once (a hang names no key to drop); reported below.
            Err(e) if e.contains("no answer within") => {
                hung.set(Some(e));
                Ok(())
            }
            other => other,
        },
        200,
    );
    if let Some(e) = hung.take() {
        bail!("db_bench {version} did not answer a probe: {e}");
    }
    result.with_context(|| format!("making the file loadable by db_bench {version}"))
}

/// db_bench's report of one benchmark, parsed from its output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub micros_per_op: f64,
    pub ops_per_sec: f64,
    pub seconds: f64,
    pub ops: u64,
    pub mb_per_sec: Option<f64>,
    pub found: Option<(u64, u64)>,
    pub latency: Option<super::measure::Latency>,
}

/// Parse db_bench output for benchmark `name` (with `--histogram=1` for latencies).
pub fn parse_report(output: &str, name: &str) -> Option<Report> {
    let mut lines = output.lines();
    let line = lines
        .by_ref()
        .find(|l| l.split(':').next().map(str::trim) == Some(name) && l.contains("micros/op"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |unit: &str| {
        words
            .iter()
            .position(|w| w.trim_end_matches(';') == unit)
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| words[i].parse::<f64>().ok())
    };
    let mut report = Report {
        micros_per_op: before("micros/op")?,
        ops_per_sec: before("ops/sec")?,
        seconds: before("seconds").unwrap_or(0.0),
        ops: before("operations").unwrap_or(0.0) as u64,
        mb_per_sec: before("MB/s"),
        ..Report::default()
    };
    if let (Some(open), Some(close)) = (line.find('('), line.rfind(')')) {
        let inner: Vec<&str> = line[open + 1..close].split_whitespace().collect();
        if inner.len() >= 3
            && inner[1] == "of"
            && let (Ok(f), Ok(t)) = (inner[0].parse(), inner[2].parse())
        {
            report.found = Some((f, t));
        }
    }
    // Histogram block that follows: Count/Average, Min/Median/Max, Percentiles, buckets.
    let mut lat = super::measure::Latency::default();
    let mut have = false;
    let mut buckets: Vec<(f64, f64, f64)> = Vec::new(); // (low, high, cumulative %)
    for l in lines {
        let t = l.trim();
        if t.contains("micros/op") {
            break;
        }
        let field = |key: &str| {
            let i = t.find(key)? + key.len();
            t[i..].split_whitespace().next()?.parse::<f64>().ok()
        };
        if t.starts_with("Count:") {
            lat.mean = field("Average:").unwrap_or(0.0);
            have = true;
        } else if t.starts_with("Min:") {
            lat.max = field("Max:").unwrap_or(0.0);
        } else if t.starts_with("Percentiles:") {
            lat.p50 = field("P50:").unwrap_or(0.0);
            lat.p99 = field("P99:").unwrap_or(0.0);
            lat.p999 = field("P99.9:").unwrap_or(0.0);
        } else if t.starts_with('[') || t.starts_with('(') {
            let nums: Vec<f64> = t
                .trim_start_matches(['[', '('])
                .split(|c: char| c == ',' || c == ']' || c == ')' || c.is_whitespace() || c == '%')
                .filter_map(|w| w.parse::<f64>().ok())
                .collect();
            if nums.len() >= 5 {
                buckets.push((nums[0], nums[1], nums[4]));
            }
        }
    }
    if have {
        // P95 by interpolation in the bucket that crosses 95%.
        let mut prev_cum = 0.0;
        for (low, high, cum) in &buckets {
            if *cum >= 95.0 {
                let share = if cum > &prev_cum {
                    (95.0 - prev_cum) / (cum - prev_cum)
                } else {
                    1.0
                };
                lat.p95 = low + (high - low) * share.clamp(0.0, 1.0);
                break;
            }
            prev_cum = *cum;
        }
        report.latency = Some(lat);
    }
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILL: &str = "DB path: [/tmp/dbb/db]
fillrandom   :      15.074 micros/op 122053 ops/sec 0.328 seconds 40000 operations;   13.5 MB/s
Microseconds per write:
Count: 40000 Average: 15.2126  StdDev: 276.27
Min: 1  Median: 2.3692  Max: 17689
Percentiles: P50: 2.37 P75: 2.87 P99: 7.15 P99.9: 4330.23 P99.99: 9742.86
------------------------------------------------------
[       0,       1 ]    37244  93.110%  93.110% ###################
(       1,       2 ]     2064   5.160%  98.270% #
(       2,       3 ]      107   0.268%  98.538%
";

    #[test]
    fn parses_db_bench_7_output() {
        let r = parse_report(FILL, "fillrandom").unwrap();
        assert_eq!(r.ops_per_sec, 122053.0);
        assert_eq!(r.micros_per_op, 15.074);
        assert_eq!(r.ops, 40000);
        assert_eq!(r.mb_per_sec, Some(13.5));
        let lat = r.latency.unwrap();
        assert_eq!(
            (lat.p50, lat.p99, lat.p999, lat.max),
            (2.37, 7.15, 4330.23, 17689.0)
        );
        assert!((lat.p95 - 1.366).abs() < 0.01, "{}", lat.p95);
        let rr = "readrandom   :       3.105 micros/op 620241 ops/sec 0.064 seconds 40000 operations;   59.3 MB/s (17254 of 20000 found)\n";
        let r = parse_report(rr, "readrandom").unwrap();
        assert_eq!(r.found, Some((17254, 20000)));
        assert!(r.latency.is_none());
        assert!(parse_report(rr, "fillrandom").is_none());
        assert!(parse_report("garbage", "readrandom").is_none());
    }
}
