//! RocksDB's query traces: the binary file `DB::StartTrace` and `db_bench --trace_file` write
//! (a header record carrying the magic `feedcafedeadbeef` and the trace and RocksDB versions,
//! then records of `timestamp u64 | type u8 | payload length u32 | payload`, little-endian).
//! Reads Write (a WriteBatch: puts, deletes, single deletes, range deletes, merges), Get,
//! IteratorSeek / SeekForPrev and MultiGet records of trace format 0.1 and 0.2; summarises a
//! trace (mix, key and value sizes, skew, rate over time) and turns it into an equivalent
//! [`Mix`]. A file cut short or not a trace is an error naming the byte where it went wrong.
//! Column families are not kept apart: every operation replays on the default one.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::mix::{KeyDist, Mix, OpWeights, SizeDist};
use super::workload_file::{Generated, comment_text, render_generated};

const MAGIC: &[u8] = b"feedcafedeadbeef";
const META: usize = 8 + 1 + 4;

/// One operation of a WriteBatch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    SingleDelete(Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
    Merge(Vec<u8>, Vec<u8>),
}

/// One traced query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Write(Vec<BatchOp>),
    Get(Vec<u8>),
    Seek { key: Vec<u8>, for_prev: bool },
    MultiGet(Vec<Vec<u8>>),
}

/// A query and when it happened (microseconds, the trace's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub micros: u64,
    pub query: Query,
}

/// A whole trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_version: String,
    pub rocksdb_version: String,
    pub records: Vec<Record>,
    /// Records of other types (block cache, IO tracing) passed over.
    pub skipped: usize,
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
    /// Offset of `buf` in the file, for messages.
    base: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.buf.len() - self.at < n {
            return Err(format!(
                "cut short at byte {}: {what} needs {n} bytes, {} left",
                self.base + self.at,
                self.buf.len() - self.at
            ));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn varint(&mut self, what: &str) -> Result<u32, String> {
        let mut v: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.take(1, what)?[0];
            v |= u32::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("bad varint at byte {}", self.base + self.at))
    }
    fn slice(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let n = self.varint(what)? as usize;
        Ok(self.take(n, what)?.to_vec())
    }
    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }
    /// Bytes not read yet: the most a count read from the file may make room for.
    fn left(&self) -> usize {
        self.buf.len() - self.at
    }
}

/// Read a trace file (a regular file of at most [`crate::input::TRACE_MAX`] bytes).
pub fn read(path: &Path) -> Result<Trace, String> {
    let bytes = crate::input::read(path, "trace", crate::input::TRACE_MAX)?;
    parse(&bytes).map_err(|e| format!("trace {}: {e}", path.display()))
}

/// Parse a trace from its bytes.
pub fn parse(bytes: &[u8]) -> Result<Trace, String> {
    let mut c = Cursor {
        buf: bytes,
        at: 0,
        base: 0,
    };
    let (_, ty, header) = record(&mut c)?;
    if ty != 1 || !header.starts_with(MAGIC) {
        return Err(
            "not a RocksDB query trace (no `feedcafedeadbeef` header); block cache \
                    and IO traces are not query traces"
                .into(),
        );
    }
    let text = String::from_utf8_lossy(header);
    let field = |name: &str| {
        text.split('\t')
            .find_map(|f| f.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let trace_version = field("Trace Version: ");
    // Shown by `workload analyze`: clipped like every echo of a file.
    let rocksdb_version = crate::input::clip(&field("RocksDB Version: "));
    let v2 = match trace_version.as_str() {
        "0.1" => false,
        "0.2" => true,
        v => {
            return Err(format!(
                "trace format `{}` is not one lsmtune reads (0.1, 0.2)",
                crate::input::clip(v)
            ));
        }
    };
    let mut records = Vec::new();
    let mut skipped = 0;
    while !c.done() {
        let start = c.at;
        let (micros, ty, payload) = record(&mut c)?;
        let mut p = Cursor {
            buf: payload,
            at: 0,
            base: start + META,
        };
        let query = match ty {
            2 => break, // the end record
            3 => Some(Query::Write(write_batch(&mut p, v2)?)),
            4 => Some(Query::Get(keyed(&mut p, v2, "get", 2)?)),
            5 | 6 => Some(Query::Seek {
                key: keyed(&mut p, v2, "seek", 4)?,
                for_prev: ty == 6,
            }),
            13 if v2 => Some(Query::MultiGet(multiget(&mut p)?)),
            _ => None,
        };
        match query {
            Some(query) => records.push(Record { micros, query }),
            None => skipped += 1,
        }
    }
    Ok(Trace {
        trace_version,
        rocksdb_version,
        records,
        skipped,
    })
}

fn record<'a>(c: &mut Cursor<'a>) -> Result<(u64, u8, &'a [u8]), String> {
    let ts = c.u64("a record's timestamp")?;
    let ty = c.take(1, "a record's type")?[0];
    let len = c.u32("a record's length")? as usize;
    Ok((ts, ty, c.take(len, "a record's payload")?))
}

/// The fields of a format-0.2 payload, in the order of the set bits of its map.
fn fields(p: &mut Cursor) -> Result<Vec<u32>, String> {
    let map = p.u64("a payload map")?;
    Ok((0..64).filter(|b| map & (1 << b) != 0).collect())
}

fn write_batch(p: &mut Cursor, v2: bool) -> Result<Vec<BatchOp>, String> {
    let rep = if v2 {
        let mut rep = Vec::new();
        for f in fields(p)? {
            match f {
                1 => rep = p.slice("a write batch")?,
                other => return Err(format!("unknown write payload field {other}")),
            }
        }
        rep
    } else {
        p.buf.to_vec()
    };
    let base = p.base;
    let mut b = Cursor {
        buf: &rep,
        at: 0,
        base,
    };
    b.take(8, "a write batch's sequence")?;
    // The count is the file's word: never more room than the bytes left could fill (an
    // operation takes at least a tag and a length byte); 0xFFFFFFFF once asked for 240 GB.
    let count = b.u32("a write batch's count")?;
    let mut ops = Vec::with_capacity((count as usize).min(b.left() / 2));
    while !b.done() {
        let tag = b.take(1, "a write batch tag")?[0];
        if matches!(tag, 0x4..=0x6 | 0x8 | 0xE | 0x10 | 0x17 | 0x19) {
            b.varint("a column family id")?;
        }
        let op = match tag {
            0x1 | 0x5 | 0x18 | 0x19 => {
                let k = b.slice("a key")?;
                Some(BatchOp::Put(k, b.slice("a value")?))
            }
            0x0 | 0x4 | 0x14 => Some(BatchOp::Delete(b.slice("a key")?)),
            0x7 | 0x8 => Some(BatchOp::SingleDelete(b.slice("a key")?)),
            0xF | 0xE => {
                let k = b.slice("a range start")?;
                Some(BatchOp::DeleteRange(k, b.slice("a range end")?))
            }
            0x2 | 0x6 => {
                let k = b.slice("a key")?;
                Some(BatchOp::Merge(k, b.slice("a value")?))
            }
            0x10 | 0x11 | 0x16 | 0x17 => {
                // Blob indexes and wide-column entities: a key and an encoded value.
                let k = b.slice("a key")?;
                Some(BatchOp::Put(k, b.slice("a value")?))
            }
            0x3 | 0x9 | 0xA | 0xB | 0xC | 0x12 | 0x13 => {
                if tag != 0x9 && tag != 0x12 && tag != 0x13 {
                    b.slice("a blob or transaction id")?;
                }
                None
            }
            0x15 => {
                b.slice("a transaction id")?;
                b.slice("a timestamp")?;
                None
            }
            0xD => None,
            t => {
                return Err(format!(
                    "unknown write batch tag 0x{t:02x} at byte {}",
                    base + b.at - 1
                ));
            }
        };
        ops.extend(op);
    }
    Ok(ops)
}

/// The key of a Get (`payload` fields 2 = column family, 3 = key) or an iterator Seek (4 =
/// column family, 5 = key, 6 and 7 = bounds); format 0.1 holds a column family and a key.
fn keyed(p: &mut Cursor, v2: bool, what: &str, first: u32) -> Result<Vec<u8>, String> {
    if !v2 {
        p.u32("a column family id")?;
        return p.slice("a key");
    }
    let mut key = Vec::new();
    for f in fields(p)? {
        match f.checked_sub(first) {
            Some(0) => {
                p.u32("a column family id")?;
            }
            Some(1) => key = p.slice("a key")?,
            Some(2 | 3) if what == "seek" => {
                p.slice("an iterator bound")?;
            }
            _ => return Err(format!("unknown {what} payload field {f}")),
        }
    }
    Ok(key)
}

fn multiget(p: &mut Cursor) -> Result<Vec<Vec<u8>>, String> {
    let (mut n, mut keys_payload) = (0, Vec::new());
    for f in fields(p)? {
        match f {
            8 => n = p.u32("a multiget size")?,
            9 => {
                p.slice("column family ids")?;
            }
            10 => keys_payload = p.slice("multiget keys")?,
            other => return Err(format!("unknown multiget payload field {other}")),
        }
    }
    let mut k = Cursor {
        buf: &keys_payload,
        at: 0,
        base: p.base,
    };
    // Each key takes at least its length byte: a size the keys cannot fill is an error before
    // any room is made for them.
    if n as usize > k.left() {
        return Err(format!(
            "a multiget of {n} keys in {} bytes of keys at byte {}",
            k.left(),
            p.base
        ));
    }
    (0..n).map(|_| k.slice("a multiget key")).collect()
}

/// What a trace shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub records: usize,
    pub seconds: f64,
    /// Operations by kind (a write batch counts each of its operations).
    pub ops: Vec<(String, u64)>,
    pub key_bytes_mean: f64,
    pub key_bytes_max: usize,
    pub value_bytes_mean: f64,
    pub value_bytes_max: usize,
    pub distinct_keys: usize,
    /// Share of accesses that went to the hottest 1% of the keys.
    pub top1pct_share: f64,
    /// Queries per second in each of up to 20 equal slices of the trace's time.
    pub qps: Vec<f64>,
    pub skipped_records: usize,
}

/// Summarise a trace.
pub fn analyze(t: &Trace) -> Summary {
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    let (mut kb, mut kn, mut kmax) = (0u64, 0u64, 0usize);
    let (mut vb, mut vn, mut vmax) = (0u64, 0u64, 0usize);
    let mut access: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut seen = |k: &[u8]| {
        kb += k.len() as u64;
        kn += 1;
        kmax = kmax.max(k.len());
        *access.entry(k.to_vec()).or_insert(0) += 1;
    };
    for r in &t.records {
        match &r.query {
            Query::Get(k) => {
                *counts.entry("get").or_default() += 1;
                seen(k);
            }
            Query::Seek { key, .. } => {
                *counts.entry("seek").or_default() += 1;
                seen(key);
            }
            Query::MultiGet(keys) => {
                *counts.entry("multiget").or_default() += 1;
                for k in keys {
                    seen(k);
                }
            }
            Query::Write(ops) => {
                for op in ops {
                    match op {
                        BatchOp::Put(k, v) | BatchOp::Merge(k, v) => {
                            let name = if matches!(op, BatchOp::Put(..)) {
                                "put"
                            } else {
                                "merge"
                            };
                            *counts.entry(name).or_default() += 1;
                            seen(k);
                            vb += v.len() as u64;
                            vn += 1;
                            vmax = vmax.max(v.len());
                        }
                        BatchOp::Delete(k) | BatchOp::SingleDelete(k) => {
                            *counts.entry("delete").or_default() += 1;
                            seen(k);
                        }
                        BatchOp::DeleteRange(k, _) => {
                            *counts.entry("delete_range").or_default() += 1;
                            seen(k);
                        }
                    }
                }
            }
        }
    }
    let first = t.records.first().map_or(0, |r| r.micros);
    let last = t.records.last().map_or(0, |r| r.micros);
    let seconds = last.saturating_sub(first) as f64 / 1e6;
    let slices = if seconds > 0.0 { 20 } else { 1 };
    let mut per = vec![0u64; slices];
    for r in &t.records {
        let i = if seconds > 0.0 {
            (((r.micros - first) as f64 / 1e6 / seconds) * slices as f64) as usize
        } else {
            0
        };
        per[i.min(slices - 1)] += 1;
    }
    let width = (seconds / slices as f64).max(1e-6);
    let mut a: Vec<u64> = access.values().copied().collect();
    a.sort_unstable_by(|x, y| y.cmp(x));
    let total: u64 = a.iter().sum();
    let top: u64 = a.iter().take(a.len().div_ceil(100)).sum();
    let order = [
        "get",
        "put",
        "delete",
        "delete_range",
        "merge",
        "seek",
        "multiget",
    ];
    Summary {
        records: t.records.len(),
        seconds,
        ops: order
            .iter()
            .filter_map(|n| counts.get(n).map(|c| (n.to_string(), *c)))
            .collect(),
        key_bytes_mean: kb as f64 / kn.max(1) as f64,
        key_bytes_max: kmax,
        value_bytes_mean: vb as f64 / vn.max(1) as f64,
        value_bytes_max: vmax,
        distinct_keys: a.len(),
        top1pct_share: top as f64 / total.max(1) as f64,
        qps: per.iter().map(|&n| n as f64 / width).collect(),
        skipped_records: t.skipped,
    }
}

/// The zipfian skew whose hottest 1% of `n` keys takes `share` of the accesses, or `None`
/// when the accesses are about uniform.
fn fit_theta(n: usize, share: f64) -> Option<f64> {
    // Below 1,000 keys or 5% (5x uniform) the share is too noisy to call skew.
    if n < 1000 || share < 0.05 {
        return None;
    }
    let top = n.div_ceil(100);
    let share_of = |theta: f64| {
        let (mut head, mut all) = (0.0, 0.0);
        for i in 1..=n {
            let p = 1.0 / (i as f64).powf(theta);
            all += p;
            if i <= top {
                head += p;
            }
        }
        head / all
    };
    (1..=98)
        .map(|i| i as f64 / 100.0)
        .min_by(|a, b| {
            (share_of(*a) - share)
                .abs()
                .total_cmp(&(share_of(*b) - share).abs())
        })
        .filter(|t| *t >= 0.05)
}

/// A mix that does what the trace did: the same operation shares, key count and sizes, and a
/// zipfian skew fitted to the share of the hottest 1% of the keys.
pub fn to_mix(s: &Summary, name: &str) -> Mix {
    let count = |n: &str| {
        s.ops
            .iter()
            .find(|(k, _)| k == n)
            .map_or(0.0, |(_, c)| *c as f64)
    };
    let mut mix = Mix::new(
        name,
        OpWeights {
            get: count("get"),
            put: count("put") + count("merge"),
            delete: count("delete") + count("delete_range"),
            seek: count("seek"),
            multiget: count("multiget"),
            ..OpWeights::default()
        },
    );
    // Sample the skew on at most 200,000 keys: the fit only needs the shape.
    mix.keys = match fit_theta(s.distinct_keys.min(200_000), s.top1pct_share) {
        Some(theta) => KeyDist::Zipfian { theta },
        None => KeyDist::Uniform,
    };
    if s.value_bytes_max > 0 {
        mix.value_size = Some(SizeDist::Fixed {
            size: s.value_bytes_mean.round() as u64,
        });
    }
    mix
}

/// The workload file (TOML) equivalent to a trace, with what it was made from as comments;
/// written by the toml crate's serializer (see [`render_generated`]).
pub fn workload_file(s: &Summary, name: &str, source: &str) -> Result<String, String> {
    let mix = to_mix(s, name);
    let keys = match mix.keys {
        KeyDist::Zipfian { theta } => KeyDist::Zipfian { theta },
        _ => KeyDist::Uniform,
    };
    let peak = s.qps.iter().copied().fold(0.0, f64::max);
    let mut comments = vec![
        format!(
            "Made by `lsmtune workload analyze` from {}:",
            comment_text(source)
        ),
        format!(
            "{} queries over {:.1} s (peak {:.0} queries/s), {} distinct keys, the hottest 1% \
             taking {:.0}% of the accesses.",
            s.records,
            s.seconds,
            peak,
            s.distinct_keys,
            s.top1pct_share * 100.0
        ),
        "Merges count as puts and range deletes as deletes; timing is not kept (the measured \
         phase runs as fast as it can)."
            .to_string(),
    ];
    if s.value_bytes_max == 0 {
        comments.push("The trace writes nothing: values are 100 bytes.".into());
    }
    render_generated(&Generated {
        comments,
        name,
        num: s.distinct_keys.max(1) as u64,
        key_size: s.key_bytes_mean.round() as u64,
        value_size: if s.value_bytes_max > 0 {
            (s.value_bytes_mean.round() as u64).max(1)
        } else {
            100
        },
        ops: &mix.ops,
        keys: &keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(out: &mut Vec<u8>, ts: u64, ty: u8, payload: &[u8]) {
        out.extend(ts.to_le_bytes());
        out.push(ty);
        out.extend((payload.len() as u32).to_le_bytes());
        out.extend(payload);
    }

    fn slice(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend(s);
    }

    /// A format-0.2 trace built by hand: a put batch, a get, a seek, a multiget.
    fn sample() -> Vec<u8> {
        let mut t = Vec::new();
        rec(
            &mut t,
            1,
            1,
            b"feedcafedeadbeef\tTrace Version: 0.2\tRocksDB Version: 7.8\tFormat: x\n",
        );
        let mut batch = vec![0u8; 8];
        batch.extend(2u32.to_le_bytes());
        batch.push(0x1);
        slice(&mut batch, b"key1");
        slice(&mut batch, b"value-1");
        batch.push(0x0);
        slice(&mut batch, b"key2");
        let mut w = (1u64 << 1).to_le_bytes().to_vec();
        slice(&mut w, &batch);
        rec(&mut t, 1_000_000, 3, &w);
        let mut g = ((1u64 << 2) | (1 << 3)).to_le_bytes().to_vec();
        g.extend(0u32.to_le_bytes());
        slice(&mut g, b"key1");
        rec(&mut t, 2_000_000, 4, &g);
        let mut s = ((1u64 << 4) | (1 << 5)).to_le_bytes().to_vec();
        s.extend(0u32.to_le_bytes());
        slice(&mut s, b"key0");
        rec(&mut t, 3_000_000, 5, &s);
        let mut keys = Vec::new();
        slice(&mut keys, b"a");
        slice(&mut keys, b"bb");
        let mut m = ((1u64 << 8) | (1 << 9) | (1 << 10)).to_le_bytes().to_vec();
        m.extend(2u32.to_le_bytes());
        slice(&mut m, &[0u8; 8]);
        slice(&mut m, &keys);
        rec(&mut t, 4_000_000, 13, &m);
        rec(&mut t, 5_000_000, 2, b"");
        t
    }

    #[test]
    fn every_query_kind_is_read() {
        let t = parse(&sample()).unwrap();
        assert_eq!(
            (t.trace_version.as_str(), t.rocksdb_version.as_str()),
            ("0.2", "7.8")
        );
        assert_eq!(
            t.records
                .iter()
                .map(|r| r.query.clone())
                .collect::<Vec<_>>(),
            vec![
                Query::Write(vec![
                    BatchOp::Put(b"key1".to_vec(), b"value-1".to_vec()),
                    BatchOp::Delete(b"key2".to_vec()),
                ]),
                Query::Get(b"key1".to_vec()),
                Query::Seek {
                    key: b"key0".to_vec(),
                    for_prev: false
                },
                Query::MultiGet(vec![b"a".to_vec(), b"bb".to_vec()]),
            ]
        );
        let s = analyze(&t);
        assert_eq!(s.records, 4);
        assert_eq!(s.seconds, 3.0);
        assert_eq!(
            s.ops,
            [
                ("get", 1),
                ("put", 1),
                ("delete", 1),
                ("seek", 1),
                ("multiget", 1)
            ]
            .map(|(k, v)| (k.to_string(), v))
        );
        assert_eq!(s.value_bytes_max, 7);
        let text = workload_file(&s, "svc", "t.trace").unwrap();
        let loaded = super::super::workload_file::parse_toml(&text, "svc").unwrap();
        assert_eq!(loaded.workload.label(), "svc");
    }

    #[test]
    fn a_cut_trace_names_the_byte() {
        let full = sample();
        for cut in [5, 40, full.len() - 20, full.len() - 3] {
            let e = parse(&full[..cut]).unwrap_err();
            assert!(e.contains("cut short at byte"), "{cut}: {e}");
        }
        let e = parse(b"0123456789abcdef0123456789").unwrap_err();
        assert!(
            e.contains("cut short") || e.contains("not a RocksDB"),
            "{e}"
        );
        let mut other = Vec::new();
        rec(&mut other, 0, 1, b"something else");
        assert!(
            parse(&other)
                .unwrap_err()
                .contains("not a RocksDB query trace")
        );
    }

    /// A format-0.2 header and one record of type `ty` whose payload is `payload`.
    fn one_record(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        rec(
            &mut t,
            1,
            1,
            b"feedcafedeadbeef\tTrace Version: 0.2\tRocksDB Version: 7.8\n",
        );
        rec(&mut t, 2, ty, payload);
        t
    }

    #[test]
    fn counts_in_the_file_never_make_room_the_bytes_cannot_fill() {
        // A write batch claiming 0xFFFFFFFF operations and holding one put: read as what it
        // holds (this once aborted the process on a 240 GB allocation).
        let mut batch = vec![0u8; 8];
        batch.extend(u32::MAX.to_le_bytes());
        batch.push(0x1);
        slice(&mut batch, b"k");
        slice(&mut batch, b"v");
        let mut w = (1u64 << 1).to_le_bytes().to_vec();
        slice(&mut w, &batch);
        let t = parse(&one_record(3, &w)).unwrap();
        assert_eq!(
            t.records[0].query,
            Query::Write(vec![BatchOp::Put(b"k".to_vec(), b"v".to_vec())])
        );
        // A multiget claiming 0xFFFFFFFF keys in 2 bytes of keys: an error naming it.
        let mut m = ((1u64 << 8) | (1 << 10)).to_le_bytes().to_vec();
        m.extend(u32::MAX.to_le_bytes());
        slice(&mut m, &[1, b'a']);
        let e = parse(&one_record(13, &m)).unwrap_err();
        assert!(e.contains("multiget of 4294967295 keys in 2 bytes"), "{e}");
    }

    #[test]
    fn a_long_version_in_the_header_is_not_echoed_whole() {
        let mut t = Vec::new();
        let header = format!(
            "feedcafedeadbeef\tTrace Version: {}\tRocksDB Version: 7.8\n",
            "9".repeat(1 << 20)
        );
        rec(&mut t, 1, 1, header.as_bytes());
        let e = parse(&t).unwrap_err();
        assert!(
            e.len() < 400 && e.contains("trace format"),
            "{} bytes",
            e.len()
        );
        let header = format!(
            "feedcafedeadbeef\tTrace Version: 0.2\tRocksDB Version: {}\n",
            "7".repeat(1 << 20)
        );
        let mut t = Vec::new();
        rec(&mut t, 1, 1, header.as_bytes());
        assert!(parse(&t).unwrap().rocksdb_version.len() < 400);
    }

    #[test]
    fn skew_is_fitted_from_the_hottest_keys() {
        assert_eq!(fit_theta(10_000, 0.01), None);
        assert_eq!(fit_theta(160, 0.5), None);
        let theta = fit_theta(10_000, 0.5).unwrap();
        assert!((0.8..0.99).contains(&theta), "{theta}");
    }
}
