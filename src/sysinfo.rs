//! Facts about the machine the tuner runs on: cores, memory (cgroup limits included), and the
//! defaults derived from them.

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
    for path in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Ok(text) = std::fs::read_to_string(Path::new(path))
            && let Ok(v) = text.trim().parse::<u64>()
        {
            return Some(v);
        }
    }
    None
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
