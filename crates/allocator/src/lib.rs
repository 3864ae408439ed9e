//! The process's allocator: mimalloc, set to hand memory back to the kernel as soon as it is
//! freed.
//!
//! mimalloc rather than glibc's allocator: profiling GET by id showed about a tenth of the CPU in
//! glibc `malloc`/`free` and their arena locks, and glibc's per-thread arenas inflate RSS. But
//! its defaults suit short programs better than a server held to a memory budget: it reserves a
//! 1 GiB arena at start, committed and advised for transparent huge pages, so each touched 2 MiB
//! of it becomes resident whole, and it purges freed pages only a second later, so whatever a
//! burst of large requests (bulk creates of long names, an import) took stayed resident long
//! after. [`return_freed_memory_promptly`] turns both off. Measured on the release binary
//! (docs/RELIABILITY.md, "The allocator"): RSS at rest about 10 MiB lower, the peak of the
//! long-names load a third lower, and no measurable CPU per request.

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The position of `purge_delay` in mimalloc's `mi_option_e` (`include/mimalloc.h`, which keeps
/// retired options as placeholders so positions never move); libmimalloc-sys does not name it.
const PURGE_DELAY: mi_option_t = 15;

/// Purges freed pages at once and stops transparent huge pages for this process. Call first in
/// `main`: the arena is reserved before it (mimalloc's own start-up), so its options for arenas
/// no longer apply, but huge pages are decided at each page fault and purges at each free.
pub fn return_freed_memory_promptly() {
    // SAFETY: sets one entry of mimalloc's option table (an atomic store), read at each purge.
    #[allow(unsafe_code)]
    unsafe {
        mi_option_set(PURGE_DELAY, 0)
    };
    // Where prctl is refused (a strict seccomp profile), the process keeps the host's huge-page
    // policy: more resident memory, nothing else.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay_ms() -> std::ffi::c_long {
        // SAFETY: reads one entry of mimalloc's option table.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_get(PURGE_DELAY)
        }
    }

    fn anonymous_mib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
    }

    #[test]
    fn memory_freed_after_a_burst_leaves_the_process_at_once() {
        return_freed_memory_promptly();
        assert_eq!(purge_delay_ms(), 0);
        #[cfg(target_os = "linux")]
        assert!(nix::sys::prctl::get_thp_disable().unwrap(), "transparent huge pages stopped");
        let before = anonymous_mib();
        // A burst like a large bulk create: many mid-sized blocks, all touched, then freed.
        let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8 | 1; 16 << 10]).collect();
        let during = anonymous_mib();
        assert!(during >= before + 48, "the burst was resident: {before} -> {during} MiB");
        drop(blocks);
        let after = anonymous_mib();
        assert!(after < before + 16, "64 MiB freed, yet RSS went {before} -> {during} -> {after} MiB");
    }
}
