//! What the examples that check memory share: the process's resident set size, and
//! counts printed with thousands separators (the report's `thousands`).

/// The process's resident set size, from `VmRSS` in `/proc/self/status` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// `10,000,001`: the report's own formatting.
pub use spanlab::report::thousands;
