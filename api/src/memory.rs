//! How the server process asks the kernel for memory.

/// Turns transparent huge pages off for the whole process.
///
/// mimalloc advises the kernel to back its arenas with 2 MiB huge pages.
/// When it later hands part of such a page back (a purge, a second after
/// the memory fell free), the next allocation there faults in a whole new
/// huge page, which the kernel zeroes in full. Under the missions
/// benchmark that zeroing was 14% of all CPU; with huge pages off the
/// system time falls by a third (docs/runtime.md, "Throughput"). The
/// setting also covers mappings made before it, so calling it early in
/// `main` is enough.
///
/// A kernel that refuses (not Linux, or a sandbox without `prctl`) only
/// costs that speed, so the error is for the caller to log.
pub fn disable_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_no_longer_gets_transparent_huge_pages() {
        super::disable_transparent_huge_pages().expect("prctl");
        assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("prctl"));
    }
}
