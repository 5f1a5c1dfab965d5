//! The one table of limits for every number a user gives lsmtune, whether it comes from a flag
//! (`--num`, `--duration`, `--trace-speed`...) or from a file (a workload file's `num`, a YCSB
//! file's `recordcount`, a mix's weights...): both paths call the same [`Whole`] or [`Real`]
//! below, so a number the flag refuses the file refuses too, with the same words. A check
//! names the quantity, the range and what it got, and never saturates, wraps or panics (a float
//! is checked before it becomes an integer or a `Duration`).

use std::time::Duration;

/// A whole-number quantity and the range it must be in.
#[derive(Debug, Clone, Copy)]
pub struct Whole {
    /// What it is called where it is written (`num`; a flag's error also shows `--num`).
    pub name: &'static str,
    /// The least value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
}

/// A real quantity and the range it must be in.
#[derive(Debug, Clone, Copy)]
pub struct Real {
    /// What it is called where it is written.
    pub name: &'static str,
    /// The least value allowed (or the bound just below it, with `above_min`).
    pub min: f64,
    /// The largest value allowed.
    pub max: f64,
    /// The minimum itself is refused (a rate must be above 0, not 0).
    pub above_min: bool,
    /// Shown after the numbers (`s`, `ops/s`), or empty.
    pub unit: &'static str,
}

/// Keys in the key space (`--num`, `num`, YCSB `recordcount`).
pub const NUM: Whole = Whole {
    name: "num",
    min: 1,
    max: 1_000_000_000_000,
};
/// Bytes of a key (`--key-size`, `key_size`).
pub const KEY_SIZE: Whole = Whole {
    name: "key_size",
    min: 8,
    max: 1024,
};
/// Bytes of a value (`--value-size`, `value_size`, YCSB `fieldcount` x `fieldlength`).
pub const VALUE_SIZE: Whole = Whole {
    name: "value_size",
    min: 0,
    max: 64 << 20,
};
/// Threads of the measured phase (`--threads`, `threads`, YCSB `threadcount`).
pub const THREADS: Whole = Whole {
    name: "threads",
    min: 1,
    max: 1024,
};
/// Operations per thread (`--ops`, `ops_per_thread`, YCSB `operationcount`).
pub const OPS: Whole = Whole {
    name: "ops",
    min: 1,
    max: 1_000_000_000_000,
};
/// Percent reads of readrandomwriterandom (`--readwritepercent`).
pub const READWRITEPERCENT: Whole = Whole {
    name: "readwritepercent",
    min: 0,
    max: 100,
};
/// Entries read after a seek (`--seek-nexts`, `scan_length`, YCSB `maxscanlength`).
pub const SCAN_LENGTH: Whole = Whole {
    name: "seek_nexts",
    min: 0,
    max: 1 << 20,
};
/// Keys per MultiGet (`multiget_size`).
pub const MULTIGET_SIZE: Whole = Whole {
    name: "multiget_size",
    min: 1,
    max: 1024,
};
/// mixgraph's key ranges (`--keyrange_num`, `keys.ranges.num`); also at most the key count.
pub const KEY_RANGES: Whole = Whole {
    name: "keys.ranges.num",
    min: 1,
    max: 1_000_000,
};
/// Fields of a YCSB record (`fieldcount`).
pub const FIELD_COUNT: Whole = Whole {
    name: "fieldcount",
    min: 1,
    max: 1 << 16,
};
/// Size of the data a key count is derived from (`--dataset-size`): 1 MiB to 1 PiB, and the
/// keys it makes must be within [`NUM`].
pub const DATASET_SIZE: Whole = Whole {
    name: "dataset-size",
    min: 1 << 20,
    max: 1 << 50,
};

/// The measured phase's length (`--duration`, `duration`, YCSB `maxexecutiontime`): at least a
/// second (a shorter one measured 0 ops/s), at most 30 days.
pub const DURATION: Real = Real {
    name: "duration",
    min: 1.0,
    max: 30.0 * 86_400.0,
    above_min: false,
    unit: "s",
};
/// Any length of time a flag or file gives (`--time-budget`, `--openai-timeout`, a duration
/// before the bound of what it is for): above 0 and at most about 115 days.
pub const TIME_SPAN: Real = Real {
    name: "a length of time",
    min: 0.0,
    max: 1e7,
    above_min: true,
    unit: "s",
};
/// How long one benchmark run may take before it is stopped (`--run-timeout`, `bench
/// --timeout`): a worker takes a moment to start, so at least a second.
pub const RUN_TIMEOUT: Real = Real {
    name: "run timeout",
    min: 1.0,
    max: 30.0 * 86_400.0,
    above_min: false,
    unit: "s",
};
/// A trace replayed at its own pace times this (`--trace-speed`); 0 means as fast as possible
/// and is allowed besides this range.
pub const TRACE_SPEED: Real = Real {
    name: "trace-speed",
    min: 0.001,
    max: 1e6,
    above_min: false,
    unit: "",
};
/// A target rate over all threads (`rate`, a sine's `a` and `d`).
pub const RATE: Real = Real {
    name: "rate",
    min: 0.0,
    max: 1e9,
    above_min: true,
    unit: "ops/s",
};
/// The relative weight of an operation (`[ops] get = 80`): they need not sum to anything,
/// but their sum must be a number.
pub const OP_WEIGHT: Real = Real {
    name: "ops",
    min: 0.0,
    max: 1e15,
    above_min: false,
    unit: "",
};
/// How compressible values are (`--compression-ratio`, `compression_ratio`).
pub const COMPRESSION_RATIO: Real = Real {
    name: "compression_ratio",
    min: 0.0,
    max: 1.0,
    above_min: true,
    unit: "",
};
/// Smallest relative gain that counts (`--min-effect 0.03`).
pub const MIN_EFFECT: Real = Real {
    name: "min-effect",
    min: 0.0,
    max: 10.0,
    above_min: false,
    unit: "",
};
/// A sampling temperature (`--temperature`).
pub const TEMPERATURE: Real = Real {
    name: "temperature",
    min: 0.0,
    max: 5.0,
    above_min: false,
    unit: "",
};

impl Whole {
    /// The same bound under the name a file spells it with (`recordcount` for [`NUM`]).
    pub const fn named(self, name: &'static str) -> Whole {
        Whole { name, ..self }
    }

    fn refuse(&self, got: &dyn std::fmt::Display) -> String {
        format!(
            "{} must be {} to {} (got {got})",
            self.name, self.min, self.max
        )
    }

    /// `v` when it is in range; else the error naming the quantity.
    pub fn check(&self, v: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(self.refuse(&v))
        }
    }

    /// `v` as the integer type a field has (`usize`, `u32`).
    pub fn check_as<T: TryFrom<u64>>(&self, v: u64) -> Result<T, String> {
        T::try_from(self.check(v)?).map_err(|_| self.refuse(&v))
    }

    /// A number written as a float (YCSB, JSON): finite, whole and in range, checked before it
    /// becomes an integer (1e300 once saturated to 2^64-1).
    pub fn check_f64(&self, v: f64) -> Result<u64, String> {
        if v.is_finite() && v.fract() == 0.0 && v >= self.min as f64 && v <= self.max as f64 {
            Ok(v as u64)
        } else {
            Err(self.refuse(&v))
        }
    }

    /// Parse a flag's text (`300000`, `1_000_000`) and check it.
    pub fn parse<T: TryFrom<u64>>(&self, text: &str) -> Result<T, String> {
        let t = text.trim().replace('_', "");
        let v: u64 = t.parse().map_err(|_| match t.parse::<f64>() {
            Ok(_) => self.refuse(&crate::input::clip(text.trim())),
            Err(_) => format!(
                "`{}` is not a whole number",
                crate::input::clip(text.trim())
            ),
        })?;
        self.check_as(v)
    }
}

impl Real {
    /// The same bound under another name.
    pub const fn named(self, name: &'static str) -> Real {
        Real { name, ..self }
    }

    /// The range in words: `1 to 2592000 s`, `above 0 and at most 1000000000 ops/s`.
    pub fn range(&self) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        if self.above_min {
            format!("above {} and at most {}{unit}", self.min, self.max)
        } else {
            format!("{} to {}{unit}", self.min, self.max)
        }
    }

    /// `v` when it is a finite number in range; else the error naming the quantity.
    pub fn check(&self, v: f64) -> Result<f64, String> {
        let low_ok = if self.above_min {
            v > self.min
        } else {
            v >= self.min
        };
        if v.is_finite() && low_ok && v <= self.max {
            Ok(v)
        } else {
            Err(format!(
                "{} must be {} (got {v}{})",
                self.name,
                self.range(),
                if self.unit.is_empty() {
                    String::new()
                } else {
                    format!(" {}", self.unit)
                }
            ))
        }
    }

    /// Parse a flag's text and check it.
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", crate::input::clip(text.trim())))?;
        self.check(v)
    }

    /// A length of time in range, checked in seconds before it becomes a `Duration` (which
    /// panics on infinity and on values past 2^64 s).
    pub fn check_duration(&self, d: f64) -> Result<Duration, String> {
        self.check(d).map(Duration::from_secs_f64)
    }

    /// A parsed `Duration` (`30s`, `10m`) in range.
    pub fn check_parsed(&self, d: Duration) -> Result<Duration, String> {
        self.check_duration(d.as_secs_f64())
    }
}

/// `--trace-speed`: 0 (as fast as possible) or within [`TRACE_SPEED`].
pub fn trace_speed(v: f64) -> Result<f64, String> {
    if v == 0.0 {
        return Ok(0.0);
    }
    TRACE_SPEED
        .check(v)
        .map_err(|e| format!("{e}; or 0 to replay as fast as the database allows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_is_checked_before_it_saturates_or_wraps() {
        assert_eq!(NUM.check(1000), Ok(1000));
        assert!(NUM.check(0).unwrap_err().contains("num must be 1 to"));
        let e = NUM.named("recordcount").check_f64(1e300).unwrap_err();
        assert!(e.contains("recordcount must be 1 to 1000000000000"), "{e}");
        assert!(NUM.check_f64(f64::NAN).is_err());
        assert!(NUM.check_f64(2.5).is_err());
        assert_eq!(NUM.check_f64(3e6), Ok(3_000_000));
        assert_eq!(THREADS.parse::<usize>("1_000"), Ok(1000));
        assert!(OPS.parse::<u64>("18446744073709551615").is_err());
        assert!(SCAN_LENGTH.parse::<u32>("4294967295").is_err());
        let e = NUM.parse::<u64>("1e30").unwrap_err();
        assert!(e.contains("num must be"), "{e}");
        assert!(
            NUM.parse::<u64>("lots")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn a_real_number_is_finite_and_in_range() {
        assert!(DURATION.check_duration(f64::INFINITY).is_err());
        assert!(DURATION.check_duration(1e30).is_err());
        assert!(DURATION.check_duration(-1.0).is_err());
        assert!(DURATION.check_duration(f64::NAN).is_err());
        let e = DURATION.check_duration(1e-10).unwrap_err();
        assert!(e.contains("duration must be 1 to 2592000 s"), "{e}");
        assert_eq!(DURATION.check_duration(30.0), Ok(Duration::from_secs(30)));
        assert!(RATE.check(0.0).is_err() && RATE.check(1.0).is_ok());
        assert_eq!(trace_speed(0.0), Ok(0.0));
        assert!(trace_speed(1e-300).unwrap_err().contains("trace-speed"));
        assert!(trace_speed(-1.0).is_err());
        assert!(MIN_EFFECT.parse("-0.1").unwrap_err().contains("min-effect"));
    }
}
