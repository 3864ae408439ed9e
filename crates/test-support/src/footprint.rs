//! What a process holds, read from `/proc` as the kernel counts it: resident memory (now and at
//! its peak), open sockets; and how many bytes a directory holds on disk. The hostile-load
//! tests assert their bounds on these figures, never on the service's own account of itself.

use std::path::Path;

/// One reading of a process's footprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// `VmRSS`: resident memory now, in bytes.
    pub rss: u64,
    /// `VmHWM`: the peak resident memory since the process started, in bytes.
    pub peak_rss: u64,
    /// Open file descriptors that are sockets (listeners, clients, database connections).
    pub sockets: usize,
}

impl Footprint {
    /// Reads the footprint of process `pid`; panics if it is gone.
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|err| panic!("/proc/{pid}/status: {err}"));
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
                * 1024
        };
        Self { rss: kib("VmRSS:"), peak_rss: kib("VmHWM:"), sockets: sockets_of(pid) }
    }

    /// Resident memory in MiB, for messages.
    pub fn rss_mib(&self) -> f64 {
        self.rss as f64 / f64::from(1 << 20)
    }
}

fn sockets_of(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.filter_map(Result::ok)
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:")))
        .count()
}

/// Bytes held by the files under `dir` (recursively); 0 when it does not exist.
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = Footprint::of(std::process::id());
        assert!(before.rss > 0 && before.peak_rss >= before.rss);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(Footprint::of(std::process::id()).sockets, before.sockets + 1);
        drop(listener);
    }

    #[test]
    fn counts_the_bytes_under_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 23]).unwrap();
        assert_eq!(disk_usage(dir.path()), 123);
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
    }
}
