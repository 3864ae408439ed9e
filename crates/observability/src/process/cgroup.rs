//! The memory and CPU limits of the container this process runs in, from the cgroup file
//! system (v2 at `/sys/fs/cgroup`, v1 under its `memory` and `cpu` controllers). Inside a
//! container both show the container's own cgroup.

const V2_MEMORY: &str = "/sys/fs/cgroup/memory.max";
const V2_CPU: &str = "/sys/fs/cgroup/cpu.max";
const V1_MEMORY: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
const V1_CPU_QUOTA: &str = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us";
const V1_CPU_PERIOD: &str = "/sys/fs/cgroup/cpu/cpu.cfs_period_us";

/// v1 reports "no limit" as the largest page-aligned value it can hold; anything this large
/// is no limit at all.
const V1_UNLIMITED: u64 = 1 << 62;

pub(super) fn memory_limit_bytes() -> Option<u64> {
    match std::fs::read_to_string(V2_MEMORY) {
        Ok(text) => parse_v2_memory(&text),
        Err(_) => parse_v1_memory(&std::fs::read_to_string(V1_MEMORY).ok()?),
    }
}

pub(super) fn cpu_limit_cores() -> Option<f64> {
    match std::fs::read_to_string(V2_CPU) {
        Ok(text) => parse_v2_cpu(&text),
        Err(_) => {
            let quota = std::fs::read_to_string(V1_CPU_QUOTA).ok()?;
            let period = std::fs::read_to_string(V1_CPU_PERIOD).ok()?;
            parse_v1_cpu(&quota, &period)
        }
    }
}

/// `memory.max`: bytes, or `max`.
fn parse_v2_memory(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn parse_v1_memory(text: &str) -> Option<u64> {
    text.trim().parse().ok().filter(|&bytes| bytes < V1_UNLIMITED)
}

/// `cpu.max`: `<quota> <period>` in microseconds, the quota `max` when unlimited.
fn parse_v2_cpu(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota: f64 = fields.next()?.parse().ok()?;
    let period: f64 = fields.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// `cfs_quota_us` is -1 when unlimited.
fn parse_v1_cpu(quota: &str, period: &str) -> Option<f64> {
    parse_v2_cpu(&format!("{} {}", quota.trim(), period.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_limits_and_their_absence() {
        assert_eq!(parse_v2_memory("268435456\n"), Some(256 * 1024 * 1024));
        assert_eq!(parse_v2_memory("max\n"), None);
        assert_eq!(parse_v2_cpu("150000 100000\n"), Some(1.5));
        assert_eq!(parse_v2_cpu("max 100000\n"), None);
    }

    #[test]
    fn v1_limits_and_their_absence() {
        assert_eq!(parse_v1_memory("134217728\n"), Some(128 * 1024 * 1024));
        assert_eq!(parse_v1_memory("9223372036854771712\n"), None);
        assert_eq!(parse_v1_cpu("50000\n", "100000\n"), Some(0.5));
        assert_eq!(parse_v1_cpu("-1\n", "100000\n"), None);
    }
}
