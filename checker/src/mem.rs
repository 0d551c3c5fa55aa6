//! Memory hints for the large arrays the checker fills (no imports of
//! the checker's own: any module may use it).

/// Asks the kernel for huge pages under `v`'s capacity (`MADV_HUGEPAGE`,
/// Linux; a hint, failures ignored, contents unchanged): for the large
/// arrays a phase fills front to back, whose page faults otherwise cost
/// one trap per 4 KiB (expensive on a virtual machine). Untouched
/// capacity stays unbacked either way.
pub(crate) fn advise_huge<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let huge = 2 << 20;
        let addr = v.as_ptr() as usize;
        let start = addr.next_multiple_of(huge);
        let end = (addr + v.capacity() * std::mem::size_of::<T>()) / huge * huge;
        if end > start {
            // SAFETY: MADV_HUGEPAGE changes no memory contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}
