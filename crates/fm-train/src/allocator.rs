//! Process-wide allocator settings for training and sampling on the CPU.
//!
//! A CPU training step allocates and frees activation-sized buffers (8 MiB each for the 4x512
//! MLP at batch 4096) dozens of times. glibc's malloc serves blocks at or above its mmap
//! threshold with fresh `mmap` pages and unmaps them on free; its dynamic threshold only rises
//! to the size of a freed block, so a block of exactly that size is mapped again. Every step
//! then page-faults its activations in anew: 13 % of a one-thread step in `perf`, plus the
//! kernel zeroing the pages. Fixing the thresholds keeps freed buffers in the heap for reuse
//! (measured: 5.2 -> 6.2 steps/s on one thread, 6.4 -> 8.9 on two).

/// Blocks below this come from the heap and are reused after free (glibc caps it at 32 MiB on
/// 64-bit targets).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at the top of the heap is returned to the system only above this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Tunes the C allocator for large, short-lived tensors; call it at program start. Returns whether settings were applied (only with glibc; other allocators
/// already cache large blocks or are left alone).
pub fn tune_for_tensors() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: glibc's mallopt takes the arena lock and only changes malloc's parameters; a
        // rejected value leaves the default in place (return value 0).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::tune_for_tensors());
    }
}
