//! Facts about the machine the tuner runs on: cores, memory (cgroup limits included), the
//! storage under the data folder (device, file system, free space, and what a short probe
//! measured: random reads, sequential writes, write + fsync), and the defaults derived from them.

use std::path::Path;

/// Physical memory in bytes, lowered to the cgroup limit when one is set.
pub fn total_memory() -> u64 {
    let physical = {
        // SAFETY: sysconf has no preconditions; it returns -1 on failure.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if pages > 0 && page > 0 {
            pages as u64 * page as u64
        } else {
            8 << 30
        }
    };
    cgroup_memory_limit().map_or(physical, |l| l.min(physical))
}

fn cgroup_memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_memory_limit_in(Path::new("/sys/fs/cgroup"), &own)
}

/// The tightest memory limit on the way from this process's own cgroup up to the root, under
/// the cgroup mount `root`, given the text of /proc/self/cgroup: cgroup v2 (`0::/PATH`,
/// `memory.max`) and v1 (`N:memory:/PATH`, `memory/…/memory.limit_in_bytes`). The root files
/// alone miss a limit set on a nested group (a container's or a systemd slice's).
pub fn cgroup_memory_limit_in(root: &Path, proc_self_cgroup: &str) -> Option<u64> {
    let mut places: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim().trim_start_matches('/');
        if controllers.is_empty() {
            places.push((root.join(rel), "memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            places.push((root.join("memory").join(rel), "memory.limit_in_bytes"));
        }
    }
    // The root files too, when /proc/self/cgroup says nothing usable.
    places.push((root.to_path_buf(), "memory.max"));
    places.push((root.join("memory"), "memory.limit_in_bytes"));
    let mut best: Option<u64> = None;
    for (dir, file) in places {
        let mut d = Some(dir.as_path());
        while let Some(here) = d {
            if !here.starts_with(root) {
                break;
            }
            if let Ok(text) = std::fs::read_to_string(here.join(file))
                && let Ok(v) = text.trim().parse::<u64>()
            {
                best = Some(best.map_or(v, |b| b.min(v)));
            }
            d = here.parent();
        }
    }
    best
}

/// Logical CPUs available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Share of memory RocksDB may use when the user does not say: half of it.
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.5;

/// The default memory budget in bytes.
pub fn default_memory_budget() -> u64 {
    (total_memory() as f64 * DEFAULT_MEMORY_FRACTION) as u64
}

/// Parse a budget: a size (`8G`, `512MiB`, `1073741824`) or a share of memory (`40%`).
pub fn parse_memory_budget(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let pct: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a percentage"))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(format!("`{text}`: a percentage must be in (0, 100]"));
        }
        return Ok((total_memory() as f64 * pct / 100.0) as u64);
    }
    match crate::options::value::parse_number(t) {
        Some((v, _)) if v >= (1u64 << 20) as f64 => Ok(v as u64),
        Some(_) => Err(format!("`{text}` is below 1 MiB")),
        None => Err(format!(
            "`{text}` is not a size (e.g. 8G, 512MiB) or a percentage (e.g. 40%)"
        )),
    }
}

#[cfg(test)]
mod tests {
    /// A database larger than any disk (10^12 keys of 64 MiB) is refused, naming the folder and
    /// what to lower; a small one passes.
    #[test]
    fn a_database_that_cannot_fit_is_refused_before_it_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::bench::Workload::new(crate::bench::Kind::ReadRandom);
        w.num = crate::bounds::NUM.max;
        w.value_size = crate::bounds::VALUE_SIZE.max as usize;
        let e = super::check_room(Some(dir.path()), &w).unwrap_err();
        assert!(
            e.contains("free")
                && e.contains("--num")
                && e.contains(&dir.path().display().to_string()),
            "{e}"
        );
        w.num = 1000;
        w.value_size = 100;
        assert_eq!(super::check_room(Some(dir.path()), &w), Ok(()));
    }

    #[test]
    fn a_limit_on_a_nested_cgroup_is_found() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // v1: the root unlimited, a slice two levels down limited to 2 GiB.
        let nested = r.join("memory/process_api/abc");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(
            r.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        std::fs::write(
            r.join("memory/process_api/memory.limit_in_bytes"),
            "2147483648\n",
        )
        .unwrap();
        std::fs::write(
            nested.join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        let own = "4:memory:/process_api/abc\n3:cpuset:/\n0::/\n";
        assert_eq!(cgroup_memory_limit_in(r, own), Some(2 << 30));
        // v2: `max` means no limit at that level; the parent's limit holds.
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("user.slice/app.scope")).unwrap();
        std::fs::write(r.join("user.slice/memory.max"), "1073741824\n").unwrap();
        std::fs::write(r.join("user.slice/app.scope/memory.max"), "max\n").unwrap();
        assert_eq!(
            cgroup_memory_limit_in(r, "0::/user.slice/app.scope\n"),
            Some(1 << 30)
        );
        assert_eq!(cgroup_memory_limit_in(r, ""), None);
    }

    use super::*;

    #[test]
    fn memory_is_plausible_and_budget_parses() {
        assert!(total_memory() >= 256 << 20);
        assert!(cores() >= 1);
        assert_eq!(parse_memory_budget("8G").unwrap(), 8 << 30);
        assert_eq!(parse_memory_budget("100%").unwrap(), total_memory());
        assert!(parse_memory_budget("0%").is_err());
        assert!(parse_memory_budget("12").is_err());
        assert!(parse_memory_budget("lots").is_err());
    }
}

/// What the tuner knows of the machine, for prompts and reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    pub cores: usize,
    pub memory_bytes: u64,
    pub cpu_model: Option<String>,
    /// The block device holding the data folder, e.g. `nvme0n1`, with its model when known.
    pub storage_device: Option<String>,
    /// Spinning disk (true), solid state (false), unknown (None, e.g. tmpfs or overlay).
    pub rotational: Option<bool>,
    /// File system type of the data folder, e.g. `ext4`, `xfs`, `tmpfs`.
    pub filesystem: Option<String>,
    pub free_bytes: Option<u64>,
    pub rocksdb_version: String,
    /// What the storage did when probed (`Facts::probe_storage`), when it was.
    #[serde(default)]
    pub storage_probe: Option<StorageProbe>,
}

/// A few seconds of measuring the storage under the data folder, as ELMo-Tune's fio step did:
/// the kernel's `rotational` flag is wrong on many virtual disks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StorageProbe {
    /// Median latency of random 4 KiB reads, in microseconds.
    pub random_read_us: f64,
    /// Whether the reads bypassed the page cache (O_DIRECT); if not, they measure memory.
    pub direct: bool,
    /// Sequential write throughput with a final fsync, MB/s.
    pub seq_write_mb_s: f64,
    /// Median latency of a 4 KiB write + fdatasync, in milliseconds.
    pub fsync_ms: f64,
}

impl StorageProbe {
    /// What the numbers say the device behaves like.
    pub fn kind(&self) -> &'static str {
        if !self.direct {
            "unknown (reads could not bypass the page cache)"
        } else if self.random_read_us < 300.0 {
            "solid-state-like"
        } else if self.random_read_us < 3000.0 {
            "network- or SATA-SSD-like"
        } else {
            "spinning-disk-like"
        }
    }
}

impl Facts {
    /// Gather the facts for a data folder (which must exist).
    pub fn gather(data_dir: &Path, rocksdb_version: &str) -> Facts {
        let (storage_device, rotational) = block_device(data_dir);
        Facts {
            cores: cores(),
            memory_bytes: total_memory(),
            cpu_model: cpu_model(),
            storage_device,
            rotational,
            filesystem: filesystem(data_dir),
            free_bytes: free_bytes(data_dir),
            rocksdb_version: rocksdb_version.to_string(),
            storage_probe: None,
        }
    }

    /// Gather the facts and measure the storage under `data_dir` (a few seconds; see
    /// [`probe_storage`]). A probe that cannot run leaves `storage_probe` empty.
    pub fn gather_and_probe(data_dir: &Path, rocksdb_version: &str) -> Facts {
        let mut f = Facts::gather(data_dir, rocksdb_version);
        f.storage_probe = probe_storage(data_dir, 32 << 20).ok();
        f
    }

    /// One line per fact, for a prompt or a report.
    pub fn describe(&self) -> String {
        use crate::options::value::human_bytes;
        let mut lines = vec![
            format!(
                "CPU: {} cores{}",
                self.cores,
                self.cpu_model
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ),
            format!("memory: {}", human_bytes(self.memory_bytes as i64)),
        ];
        let flag = match self.rotational {
            Some(true) => "the kernel flags it rotational",
            Some(false) => "the kernel flags it non-rotational",
            None => "kind unknown to the kernel",
        };
        lines.push(format!(
            "storage: {} ({flag}), file system {}, {} free",
            self.storage_device.as_deref().unwrap_or("unknown device"),
            self.filesystem.as_deref().unwrap_or("unknown"),
            self.free_bytes
                .map(|b| human_bytes(b as i64))
                .unwrap_or_else(|| "?".into())
        ));
        if let Some(p) = &self.storage_probe {
            lines.push(format!(
                "storage measured in the data folder: random 4 KiB reads {:.0} us{}, sequential writes {:.0} MB/s, write + fsync {:.2} ms: {}",
                p.random_read_us,
                if p.direct { "" } else { " (page cache)" },
                p.seq_write_mb_s,
                p.fsync_ms,
                p.kind()
            ));
        }
        lines.push(format!("RocksDB: {}", self.rocksdb_version));
        lines.join("\n")
    }
}

/// Measure the storage under `dir` with a scratch file of `size` bytes (removed after):
/// sequential writes then fsync, 64 random 4 KiB reads with O_DIRECT (falling back to buffered
/// reads where the file system refuses it, e.g. tmpfs), and 16 small write + fdatasync pairs.
/// About one to three seconds.
pub fn probe_storage(dir: &Path, size: usize) -> std::io::Result<StorageProbe> {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::Instant;
    let path = dir.join(format!(".lsmtune-probe-{}", std::process::id()));
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _guard = Remove(&path);
    let size = size.max(1 << 20) & !4095;
    // Sequential writes of distinct (incompressible) data, then fsync.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)?;
    let mut rng = crate::rng::Rng::new(0x0510_7A6E);
    let chunk: Vec<u8> = (0..1 << 20).map(|_| rng.below(256) as u8).collect();
    let t = Instant::now();
    for _ in 0..size >> 20 {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    let seq_write_mb_s = size as f64 / 1e6 / t.elapsed().as_secs_f64().max(1e-9);
    // Random aligned 4 KiB reads, bypassing the page cache where possible.
    let blocks = (size / 4096) as u64;
    let direct = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .ok();
    let is_direct = direct.is_some();
    let mut reader = match direct {
        Some(d) => d,
        None => std::fs::File::open(&path)?,
    };
    let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("4 KiB aligned");
    // SAFETY: the layout has a non-zero size; the buffer is freed below and only read through
    // this slice while allocated.
    let ptr = unsafe { std::alloc::alloc(layout) };
    if ptr.is_null() {
        return Err(std::io::Error::other("out of memory"));
    }
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, 4096) };
    let mut reads = Vec::with_capacity(64);
    let mut result = Ok(());
    for _ in 0..64 {
        let at = rng.below(blocks) * 4096;
        let t = Instant::now();
        if let Err(e) = reader
            .seek(SeekFrom::Start(at))
            .and_then(|_| reader.read_exact(buf))
        {
            result = Err(e);
            break;
        }
        reads.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // SAFETY: allocated above with the same layout.
    unsafe { std::alloc::dealloc(ptr, layout) };
    result?;
    // Small writes made durable one at a time (what a WAL sync costs).
    let mut syncs = Vec::with_capacity(16);
    for i in 0..16u64 {
        f.seek(SeekFrom::Start(i * 4096))?;
        let t = Instant::now();
        f.write_all(&chunk[..4096])?;
        f.sync_data()?;
        syncs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    Ok(StorageProbe {
        random_read_us: median(&mut reads),
        direct: is_direct,
        seq_write_mb_s,
        fsync_ms: median(&mut syncs),
    })
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Refuse a benchmark whose database cannot fit in `dir` (the work folder, or the system's
/// temporary folder): its raw data (`num` × (key + value) bytes) twice over, for the live tree
/// and a compaction's output, must be at most the free space there. A `--dataset-size 1e12`
/// is an error before anything is loaded, not a full disk an hour later. Unknown free space
/// (statvfs failing) passes.
pub fn check_room(dir: Option<&Path>, w: &crate::bench::Workload) -> Result<(), String> {
    let tmp = std::env::temp_dir();
    let dir = dir.unwrap_or(&tmp);
    let raw = (w.num as f64) * ((w.key_size + w.value_size) as f64);
    let need = 2.0 * raw;
    match free_bytes(dir) {
        Some(free) if need > free as f64 => Err(format!(
            "the {} database needs about {} ({} keys x {} bytes, twice for compaction), but {} \
             has {} free: lower --num or --dataset-size, or pick a --work-dir with room",
            w.label(),
            crate::options::value::human_bytes(need.min(i64::MAX as f64) as i64),
            w.num,
            w.key_size + w.value_size,
            dir.display(),
            crate::options::value::human_bytes(free.min(i64::MAX as u64) as i64)
        )),
        _ => Ok(()),
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is written by statvfs before it is read.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The file system type of the mount holding `dir` (longest matching mount point).
fn filesystem(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, fs) = (f.next()?, f.next()?, f.next()?);
            let point = point.replace("\\040", " ");
            dir.starts_with(&point)
                .then(|| (point.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

/// The whole-disk block device behind `dir` (via /sys/dev/block/MAJ:MIN), its model, and
/// whether it spins. None for virtual file systems.
fn block_device(dir: &Path) -> (Option<String>, Option<bool>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return (None, None);
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let Ok(mut sys) = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")) else {
        return (None, None);
    };
    // A partition's folder has a `partition` file; the disk is its parent.
    if sys.join("partition").exists()
        && let Some(parent) = sys.parent()
    {
        sys = parent.to_path_buf();
    }
    let name = sys.file_name().map(|n| n.to_string_lossy().to_string());
    let read = |p: &str| {
        std::fs::read_to_string(sys.join(p))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let rotational = read("queue/rotational").map(|r| r == "1");
    let model = read("device/model").filter(|m| !m.is_empty());
    let device = match (name, model) {
        (Some(n), Some(m)) => Some(format!("{n}: {m}")),
        (n, _) => n,
    };
    (device, rotational)
}

#[cfg(test)]
mod facts_tests {
    use super::*;

    #[test]
    fn facts_of_the_temp_folder_are_plausible() {
        let dir = std::env::temp_dir();
        let f = Facts::gather(&dir, "11.8.1");
        assert!(f.cores >= 1);
        assert!(f.memory_bytes >= 256 << 20);
        assert!(f.filesystem.is_some(), "{f:?}");
        assert!(f.free_bytes.is_some_and(|b| b > 0), "{f:?}");
        let text = f.describe();
        assert!(
            text.contains("cores") && text.contains("RocksDB: 11.8.1"),
            "{text}"
        );
    }

    #[test]
    fn the_storage_probe_measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = probe_storage(dir.path(), 4 << 20).unwrap();
        // Measured, not judged: how long a read takes depends on how busy the device is.
        assert!(
            p.random_read_us > 0.0 && p.random_read_us.is_finite(),
            "{p:?}"
        );
        assert!(p.seq_write_mb_s > 0.0 && p.fsync_ms >= 0.0, "{p:?}");
        assert!(!p.kind().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = Facts::gather(dir.path(), "11.8.1");
        f.storage_probe = Some(p);
        assert!(
            f.describe().contains("random 4 KiB reads"),
            "{}",
            f.describe()
        );
    }
}
