//! The space a value search moves in: which options, and for each the values it may take, on
//! the scale that suits it. Sizes and wide counts on a log scale, small counts and ratios on a
//! ladder of the values worth telling apart, filters and compression as unordered choices.
//! Ranges come from the catalog's types, narrowed to what makes sense for this machine and
//! workload (a block cache up to half the memory budget, memtables up to a quarter).
//!
//! A point of the space is one coordinate per dimension: a position in [0, 1] for ordered
//! dimensions (numbers and ladders), an index for unordered choices.

use crate::bench::Workload;
use crate::options::catalog::Catalog;
use crate::options::value::{OptionType, Value, round_size};
use crate::options::{Config, access::same_value};

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// What values a dimension takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A number from `lo` to `hi` on a log scale (sizes rounded to whole KiB or MiB, counts to
    /// integers).
    Log { lo: f64, hi: f64 },
    /// One of these values, in increasing order: a position picks the nearest rung.
    Ladder(Vec<Value>),
    /// One of these values, unordered.
    Choice(Vec<Value>),
}

/// One option the search moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    pub key: &'static str,
    pub kind: Kind,
}

/// A point: one coordinate per dimension.
pub type Point = Vec<f64>;

impl Dim {
    /// Whether the dimension is unordered (an index, not a position).
    pub fn categorical(&self) -> Option<usize> {
        match &self.kind {
            Kind::Choice(v) => Some(v.len()),
            _ => None,
        }
    }

    /// The value at a coordinate.
    pub fn value(&self, ty: &OptionType, x: f64) -> Value {
        match &self.kind {
            Kind::Log { lo, hi } => {
                let v = (lo.ln() + x.clamp(0.0, 1.0) * (hi.ln() - lo.ln())).exp();
                match ty {
                    OptionType::Size { min, max } => {
                        Value::Int(round_size(v.round() as i64).clamp(*min, *max))
                    }
                    OptionType::Int { min, max } => {
                        Value::Int((v.round() as i64).clamp(*min, *max))
                    }
                    OptionType::Double { min, max } => {
                        Value::Double(((v * 1000.0).round() / 1000.0).clamp(*min, *max))
                    }
                    _ => Value::Double(v),
                }
            }
            Kind::Ladder(vals) => {
                let i = ((x.clamp(0.0, 1.0) * vals.len() as f64) as usize).min(vals.len() - 1);
                vals[i].clone()
            }
            Kind::Choice(vals) => vals[(x.max(0.0) as usize).min(vals.len() - 1)].clone(),
        }
    }

    /// The coordinate of a value (the nearest one for a value off the dimension's range or
    /// rungs; the first choice for an unknown one).
    pub fn coordinate(&self, v: &Value) -> f64 {
        match &self.kind {
            Kind::Log { lo, hi } => {
                let x = v.as_f64().unwrap_or(*lo).max(f64::MIN_POSITIVE);
                ((x.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
            }
            Kind::Ladder(vals) => {
                let x = v.as_f64();
                let i = match x {
                    Some(x) => vals
                        .iter()
                        .enumerate()
                        .min_by(|(_, a), (_, b)| {
                            let d = |r: &Value| (r.as_f64().unwrap_or(0.0) - x).abs();
                            d(a).total_cmp(&d(b))
                        })
                        .map_or(0, |(i, _)| i),
                    None => vals.iter().position(|r| same_value(r, v)).unwrap_or(0),
                };
                (i as f64 + 0.5) / vals.len() as f64
            }
            Kind::Choice(vals) => vals.iter().position(|r| same_value(r, v)).unwrap_or(0) as f64,
        }
    }
}

/// The dimensions of a search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    pub dims: Vec<Dim>,
}

impl Space {
    /// The configuration's coordinates.
    pub fn point_of(&self, config: &Config, catalog: &Catalog) -> Point {
        self.dims
            .iter()
            .map(|d| {
                let v = catalog
                    .get(d.key)
                    .map(|e| config.get(e))
                    .unwrap_or(Value::Bool(false));
                d.coordinate(&v)
            })
            .collect()
    }

    /// The values of a point, as changes.
    pub fn values(&self, point: &[f64], catalog: &Catalog) -> Vec<(String, Value)> {
        self.dims
            .iter()
            .zip(point)
            .filter_map(|(d, x)| {
                let e = catalog.get(d.key)?;
                Some((d.key.to_string(), d.value(&e.spec.ty, *x)))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.dims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// Keep only dimensions whose option the catalog has and the tune may change.
    pub fn retain_proposable(&mut self, proposable: &[&str]) {
        self.dims.retain(|d| proposable.contains(&d.key));
    }
}

fn bools() -> Kind {
    Kind::Choice(vec![Value::Bool(false), Value::Bool(true)])
}

fn strs(v: &[&str]) -> Kind {
    Kind::Choice(v.iter().map(|s| Value::Str(s.to_string())).collect())
}

fn ints(v: &[i64]) -> Kind {
    Kind::Ladder(v.iter().map(|i| Value::Int(*i)).collect())
}

fn doubles(v: &[f64]) -> Kind {
    Kind::Ladder(v.iter().map(|d| Value::Double(*d)).collect())
}

/// The space of options that matter for `workload` on this machine, most important first
/// (reads' filter and cache for readers, the write path for writers), at most `max` of them:
/// what a search on its own explores (the headroom search, and the search baseline).
pub fn for_workload(w: &Workload, memory_budget: u64, cores: usize, max: usize) -> Space {
    let budget = memory_budget as f64;
    let cache_hi = (budget / 2.0).max(16.0 * MIB);
    let memtable_hi = (budget / 4.0).clamp(8.0 * MIB, 512.0 * MIB);
    let jobs_hi = (4 * cores.max(1)).clamp(4, 16) as i64;
    let read: Vec<Dim> = vec![
        Dim {
            key: "table.filter_bits_per_key",
            kind: doubles(&[0.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0]),
        },
        Dim {
            key: "table.block_cache_size",
            kind: Kind::Log {
                lo: 8.0 * MIB,
                hi: cache_hi,
            },
        },
        Dim {
            key: "table.block_size",
            kind: Kind::Log {
                lo: 2.0 * KIB,
                hi: 64.0 * KIB,
            },
        },
        Dim {
            key: "table.data_block_index_type",
            kind: strs(&["kDataBlockBinarySearch", "kDataBlockBinaryAndHash"]),
        },
        Dim {
            key: "table.filter_type",
            kind: strs(&["bloom", "ribbon"]),
        },
        Dim {
            key: "table.cache_index_and_filter_blocks",
            kind: bools(),
        },
        Dim {
            key: "optimize_filters_for_hits",
            kind: bools(),
        },
        Dim {
            key: "memtable_prefix_bloom_size_ratio",
            kind: doubles(&[0.0, 0.05, 0.1, 0.2]),
        },
        Dim {
            key: "memtable_whole_key_filtering",
            kind: bools(),
        },
    ];
    let write: Vec<Dim> = vec![
        Dim {
            key: "write_buffer_size",
            kind: Kind::Log {
                lo: 4.0 * MIB,
                hi: memtable_hi,
            },
        },
        Dim {
            key: "enable_pipelined_write",
            kind: bools(),
        },
        Dim {
            key: "max_write_buffer_number",
            kind: ints(&[2, 3, 4, 6, 8]),
        },
        Dim {
            key: "max_background_jobs",
            kind: ints(
                &[2, 4, 6, 8, 12, 16]
                    .into_iter()
                    .filter(|j| *j <= jobs_hi)
                    .collect::<Vec<_>>(),
            ),
        },
        Dim {
            key: "compression",
            kind: strs(&[
                "kNoCompression",
                "kLZ4Compression",
                "kSnappyCompression",
                "kZSTD",
            ]),
        },
        Dim {
            key: "level0_file_num_compaction_trigger",
            kind: ints(&[2, 4, 6, 8, 12, 16]),
        },
        Dim {
            key: "level0_slowdown_writes_trigger",
            kind: ints(&[20, 28, 36, 48]),
        },
        Dim {
            key: "max_bytes_for_level_base",
            kind: Kind::Log {
                lo: 64.0 * MIB,
                hi: 2.0 * GIB,
            },
        },
        Dim {
            key: "target_file_size_base",
            kind: Kind::Log {
                lo: 16.0 * MIB,
                hi: 256.0 * MIB,
            },
        },
        Dim {
            key: "max_subcompactions",
            kind: ints(&[1, 2, 4]),
        },
        Dim {
            key: "min_write_buffer_number_to_merge",
            kind: ints(&[1, 2, 3]),
        },
        Dim {
            key: "bytes_per_sync",
            kind: ints(&[0, 1 << 20, 4 << 20]),
        },
        Dim {
            key: "bottommost_compression",
            kind: strs(&[
                "kDisableCompressionOption",
                "kNoCompression",
                "kLZ4Compression",
                "kZSTD",
            ]),
        },
    ];
    let scan: Vec<Dim> = vec![
        Dim {
            key: "table.block_size",
            kind: Kind::Log {
                lo: 4.0 * KIB,
                hi: 256.0 * KIB,
            },
        },
        Dim {
            key: "table.block_cache_size",
            kind: Kind::Log {
                lo: 8.0 * MIB,
                hi: cache_hi,
            },
        },
        Dim {
            key: "table.max_auto_readahead_size",
            kind: Kind::Log {
                lo: 64.0 * KIB,
                hi: 4.0 * MIB,
            },
        },
    ];
    // Interleave by importance: the first few of each group the workload has, then the rest.
    let groups: Vec<&Vec<Dim>> = [
        (w.point_reads(), &read),
        (w.scans(), &scan),
        (w.writes(), &write),
    ]
    .into_iter()
    .filter_map(|(on, g)| on.then_some(g))
    .collect();
    let groups: Vec<&Vec<Dim>> = if groups.is_empty() {
        vec![&read, &write]
    } else {
        groups
    };
    let mut dims: Vec<Dim> = Vec::new();
    let longest = groups.iter().map(|g| g.len()).max().unwrap_or(0);
    for i in 0..longest {
        for g in &groups {
            if let Some(d) = g.get(i)
                && !dims.iter().any(|x| x.key == d.key)
            {
                dims.push(d.clone());
            }
        }
    }
    dims.truncate(max);
    Space { dims }
}

/// A dimension around a value a proposer moved an option to: the model names the option and
/// the direction (from `from` to `to`), the search looks for the value, from a little short of
/// `to` to well beyond it in the same direction, within the option's range. Unordered options
/// (bools, enums) are not searched: the proposer's choice stands. None when the option cannot
/// be searched this way.
pub fn around(key: &'static str, ty: &OptionType, from: &Value, to: &Value) -> Option<Dim> {
    let (min, max) = match ty {
        OptionType::Int { min, max } | OptionType::Size { min, max } => (*min as f64, *max as f64),
        OptionType::Double { min, max } => (*min, *max),
        _ => return None,
    };
    let (a, b) = (from.as_f64()?, to.as_f64()?);
    if b <= 0.0 || a == b {
        return None;
    }
    let (lo, hi) = if b > a {
        (b / 2.0, b * 4.0)
    } else {
        (b / 4.0, b * 2.0)
    };
    let (lo, hi) = (lo.max(min).max(f64::MIN_POSITIVE), hi.min(max));
    if hi <= lo * 1.01 {
        return None;
    }
    if matches!(ty, OptionType::Int { .. }) && hi - lo < 8.0 {
        // A small count: its whole rungs, not a log scale.
        let rungs: Vec<Value> = (lo.ceil() as i64..=hi.floor() as i64)
            .map(Value::Int)
            .collect();
        return (rungs.len() >= 2).then_some(Dim {
            key,
            kind: Kind::Ladder(rungs),
        });
    }
    Some(Dim {
        key,
        kind: Kind::Log { lo, hi },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Kind as WKind;

    #[test]
    fn coordinates_and_values_round_trip_on_every_dimension() {
        let catalog = crate::options::catalog().unwrap();
        let w = Workload::new(WKind::ReadRandomWriteRandom);
        let s = for_workload(&w, 4 << 30, 2, 64);
        assert!(s.len() >= 15, "{}", s.len());
        for d in &s.dims {
            let e = catalog.get(d.key).expect(d.key);
            for x in [0.0, 0.13, 0.5, 0.77, 1.0] {
                let x = match d.categorical() {
                    Some(n) => (x * (n - 1) as f64).round(),
                    None => x,
                };
                let v = d.value(&e.spec.ty, x);
                assert!(
                    crate::tune::knowledge::in_range(&e.spec.ty, &v),
                    "{}: {v}",
                    d.key
                );
                // Its coordinate gives the same value back.
                let back = d.value(&e.spec.ty, d.coordinate(&v));
                assert!(same_value(&back, &v), "{}: {v} -> {back}", d.key);
            }
        }
        // Readers lead with the filter and the cache; a writer's space has no read options.
        assert_eq!(s.dims[0].key, "table.filter_bits_per_key");
        let fill = for_workload(&Workload::new(WKind::FillRandom), 4 << 30, 2, 64);
        assert!(fill.dims.iter().all(|d| !d.key.starts_with("table.filter")));
        assert_eq!(for_workload(&w, 4 << 30, 2, 5).len(), 5);
    }

    #[test]
    fn around_a_move_searches_on_in_its_direction() {
        let ty = OptionType::Size {
            min: 1 << 20,
            max: 1 << 40,
        };
        let up = around(
            "table.block_cache_size",
            &ty,
            &Value::Int(32 << 20),
            &Value::Int(256 << 20),
        )
        .unwrap();
        assert_eq!(
            up.kind,
            Kind::Log {
                lo: (128 << 20) as f64,
                hi: (1024 << 20) as f64
            }
        );
        let small = OptionType::Int { min: 1, max: 64 };
        let buffers = around(
            "max_write_buffer_number",
            &small,
            &Value::Int(4),
            &Value::Int(2),
        );
        assert_eq!(
            buffers.unwrap().kind,
            Kind::Ladder((1..=4).map(Value::Int).collect::<Vec<_>>())
        );
        assert!(
            around(
                "x",
                &OptionType::Bool,
                &Value::Bool(false),
                &Value::Bool(true)
            )
            .is_none()
        );
    }
}
