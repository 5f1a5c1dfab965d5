//! The history database: one SQLite file (through rusqlite, SQLite built in), the only module
//! that speaks SQL.
//!
//! Why SQLite and not the RocksDB lsmtune already links: several processes write the history
//! at once (two tunes on one host, the tasks of a Slurm array on a node), and SQLite takes a
//! lock per transaction and waits for it, where RocksDB allows one process per database for
//! as long as it is open; the history is one file a user can copy, back up or query with the
//! `sqlite3` shell (`SELECT key, avg(effect) FROM changes GROUP BY key`), where a RocksDB
//! database is a folder of SST, MANIFEST, LOG and OPTIONS files; and a schema version
//! (`PRAGMA user_version`) lets a later lsmtune migrate it. The cost is SQLite's C source in
//! the build (about a minute).
//!
//! Tables: `tunes` (one row per tune: id, when, machine fingerprint, workload, objective, and
//! the [`Tune`] as JSON, which is what is read back) and `changes` (one row per measured option
//! change, for queries).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};

use super::Tune;

/// The schema this build writes and reads.
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tunes (
    id TEXT PRIMARY KEY,
    recorded INTEGER NOT NULL,
    machine TEXT NOT NULL,
    workload TEXT NOT NULL,
    objective TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    tune TEXT NOT NULL REFERENCES tunes(id) ON DELETE CASCADE,
    iteration INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    kept INTEGER NOT NULL,
    effect REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_key ON changes(key);
CREATE INDEX IF NOT EXISTS tunes_machine ON tunes(machine, objective);
";

/// An open history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating the file, its folder and the tables if need be). A file that is not a
    /// history (another SQLite database, not SQLite at all, a newer schema) is an error naming
    /// it.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if path.is_dir() {
            bail!("{} is a folder, not a history file", path.display());
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the history {}", path.display()))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store
            .prepare()
            .map_err(|e| anyhow::anyhow!("{} is not an lsmtune history: {e}", path.display()))?;
        Ok(store)
    }

    fn prepare(&self) -> Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > VERSION {
            bail!("its schema is version {version}, newer than this lsmtune reads ({VERSION})");
        }
        // Another program's database: tables of its own and no version of ours.
        let tables: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT IN ('tunes', 'changes')",
            [],
            |r| r.get(0),
        )?;
        if version == 0 && tables > 0 {
            bail!("it holds other tables (another program's database?)");
        }
        self.conn.execute_batch(SCHEMA)?;
        self.conn
            .execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Add a tune; false when a tune with its id is there already (nothing is written).
    pub fn insert(&mut self, t: &Tune) -> Result<bool> {
        let body = serde_json::to_string(t)?;
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO tunes (id, recorded, machine, workload, objective, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                t.id,
                t.recorded as i64,
                t.machine.fingerprint,
                t.workload.label,
                t.objective,
                body
            ],
        )?;
        if added == 1 {
            let mut ins = tx.prepare(
                "INSERT INTO changes (tune, iteration, key, value, kept, effect, low, high) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for s in &t.steps {
                for (k, v) in &s.changes {
                    ins.execute(params![
                        t.id,
                        s.iteration as i64,
                        k,
                        v,
                        s.kept,
                        s.effect,
                        s.low,
                        s.high
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(added == 1)
    }

    /// Every tune, oldest first, and a warning for each row that could not be read (the rest
    /// are still returned).
    pub fn all(&self) -> Result<(Vec<Tune>, Vec<String>)> {
        let mut q = self
            .conn
            .prepare("SELECT id, body FROM tunes ORDER BY recorded, id")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let (mut tunes, mut warnings) = (Vec::new(), Vec::new());
        for row in rows {
            let (id, body) = row?;
            match serde_json::from_str::<Tune>(&body)
                .map_err(|e| e.to_string())
                .and_then(|t| t.check().map(|()| t))
            {
                Ok(t) => tunes.push(t),
                Err(e) => warnings.push(format!(
                    "{}: tune {} cannot be read ({}); left out",
                    self.path.display(),
                    crate::input::clip(&id),
                    crate::input::clip(&e)
                )),
            }
        }
        Ok((tunes, warnings))
    }

    /// The tune whose id starts with `prefix` (ids are hex; a unique prefix is enough).
    pub fn get(&self, prefix: &str) -> Result<Option<Tune>> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        let mut q = self
            .conn
            .prepare("SELECT body FROM tunes WHERE id LIKE ?1 LIMIT 2")?;
        let bodies: Vec<String> = q
            .query_map([pattern], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        match bodies.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(serde_json::from_str(one).with_context(|| {
                format!("tune {prefix} in {} cannot be read", self.path.display())
            })?)),
            _ => bail!("more than one tune's id starts with {prefix}: give more of it"),
        }
    }

    /// Tunes held.
    pub fn count(&self) -> Result<usize> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT count(*) FROM tunes", [], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Features, Machine, Outcome, Step};
    use std::collections::BTreeMap;

    fn tune(id: &str) -> Tune {
        Tune {
            format: crate::history::FORMAT.into(),
            id: id.into(),
            recorded: 5,
            version: "0".into(),
            machine: Machine {
                fingerprint: "m".into(),
                cores: 2,
                memory_bytes: 1 << 30,
                cpu_model: None,
                storage: "ssd".into(),
                filesystem: None,
                rocksdb: "10".into(),
            },
            workload: Features::of(&crate::bench::Workload::new(
                crate::bench::workload::Kind::ReadRandom,
            )),
            objective: "throughput".into(),
            proposer: "expert".into(),
            start: "s".into(),
            steps: vec![Step {
                iteration: 1,
                proposer: "expert".into(),
                changes: BTreeMap::from([("table.filter_bits_per_key".into(), "10".into())]),
                from: BTreeMap::new(),
                kept: true,
                effect: 0.5,
                low: 0.2,
                high: 0.8,
            }],
            outcome: Some(Outcome {
                effect: 0.5,
                low: 0.2,
                high: 0.8,
                kept_start: false,
            }),
            best: BTreeMap::new(),
            iterations: 1,
            elapsed_secs: 1.0,
            source: None,
        }
    }

    #[test]
    fn a_tune_goes_in_once_and_comes_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.sqlite");
        let mut s = Store::open(&path).unwrap();
        assert!(s.insert(&tune("abc1")).unwrap());
        assert!(!s.insert(&tune("abc1")).unwrap());
        assert!(s.insert(&tune("abd2")).unwrap());
        drop(s);
        let s = Store::open(&path).unwrap();
        let (all, warnings) = s.all().unwrap();
        assert_eq!((all.len(), warnings.len()), (2, 0));
        assert_eq!(all[0], tune("abc1"));
        assert_eq!(s.get("abc").unwrap().unwrap().id, "abc1");
        assert!(s.get("ab").is_err(), "an ambiguous prefix is an error");
        assert!(s.get("zz").unwrap().is_none());
        let n: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM changes WHERE key = 'table.filter_bits_per_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_file_that_is_not_a_history_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        let e = Store::open(&junk).err().unwrap().to_string();
        assert!(
            e.contains("junk.sqlite") && e.contains("not an lsmtune history"),
            "{e}"
        );
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = Store::open(&other).err().unwrap().to_string();
        assert!(e.contains("other tables"), "{e}");
    }

    #[test]
    fn a_row_that_cannot_be_read_is_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let mut s = Store::open(&path).unwrap();
        s.insert(&tune("good")).unwrap();
        s.conn
            .execute(
                "INSERT INTO tunes VALUES ('bad', 1, 'm', 'w', 'throughput', '{not json')",
                [],
            )
            .unwrap();
        let (all, warnings) = s.all().unwrap();
        assert_eq!(all.len(), 1);
        assert!(
            warnings[0].contains("tune bad cannot be read"),
            "{warnings:?}"
        );
    }
}
