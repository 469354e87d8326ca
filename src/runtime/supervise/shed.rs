//! What a supervisor gives back to the kernel once its container runs. Starting a
//! container (the spec, the rootfs, seccomp, the network) touches megabytes of kiln's code,
//! a deep stack and a heap of short-lived data; afterwards a supervisor only copies lines
//! and waits, for as long as the container lives, one per container. So it returns:
//!
//! - the free pages of its heap (`malloc_trim`);
//! - the main thread's stack below the frame it runs in (its deepest calls are over:
//!   what lies below the stack pointer is dead, and comes back as zero pages if needed);
//! - the pages of its own executable that it only read (code and read-only data, none
//!   written since the load): they stay in the page cache, shared, and come back on the
//!   next use with a minor fault; the supervisor's steady state uses a few of them.
//!
//! [`prepare`] sets up the allocator for that at the start (one arena, large blocks in
//! mappings of their own).
//!
//! It never drops a page that holds something written: not a mapping with any anonymous
//! (copied-on-write) page, such as the relocated part of the executable, and not the
//! stack at or above the caller's frame. It knows nothing of containers.

use std::ops::Range;
use std::path::Path;

/// What [`shed`] would drop, from `/proc/self/smaps`: the read-only mappings of the file
/// `exe` without an anonymous page, and the part of the `[stack]` mapping below `keep`
/// (when `keep` lies in it). Page-aligned ranges.
pub fn droppable(smaps: &str, exe: &Path, keep: usize) -> Vec<Range<usize>> {
    let exe = exe.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    // The current mapping: its range, whether it is a candidate, and what it is.
    let mut current: Option<(Range<usize>, Kind)> = None;
    let mut anonymous = false;
    let mut finish = |current: Option<(Range<usize>, Kind)>, anonymous: bool| match current {
        Some((range, Kind::Code)) if !anonymous => found.push(range),
        Some((range, Kind::Stack)) if range.contains(&keep) => {
            let end = keep & !(PAGE - 1);
            if end > range.start {
                found.push(range.start..end);
            }
        }
        _ => {}
    };
    for line in smaps.lines() {
        if let Some((range, kind)) = header(line, exe) {
            finish(current.take(), anonymous);
            current = Some((range, kind));
            anonymous = false;
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            anonymous = kb.trim().trim_end_matches("kB").trim() != "0";
        }
    }
    finish(current, anonymous);
    found
}

const PAGE: usize = 4096;

/// What a mapping is to [`droppable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Read-only, of the executable.
    Code,
    /// The main thread's stack.
    Stack,
    Other,
}

/// The range and kind of a mapping's first line (`START-END PERMS OFFSET DEV INODE PATH`);
/// `None` for the other lines of smaps (`Size: 4 kB`, `VmFlags: …`).
fn header(line: &str, exe: &[u8]) -> Option<(Range<usize>, Kind)> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let path = fields.nth(3).unwrap_or("").trim_start();
    let kind = if path == "[stack]" {
        Kind::Stack
    } else if path.as_bytes() == exe && !perms.contains('w') && perms.ends_with('p') {
        Kind::Code
    } else {
        Kind::Other
    };
    Some((start..end, kind))
}

/// Sets up the allocator of a process that will live long after a burst of start-up work:
/// one arena (a health round's thread would otherwise get an arena of its own, whose pages
/// stay), and blocks of 8 KiB and more in mappings of their own, returned whole when freed
/// (the large reads and buffers of start-up then leave no holes in the heap for
/// [`shed`]'s trim to miss). To be called first thing, before other threads.
pub fn prepare() {
    // SAFETY: mallopt only changes the allocator's parameters; no allocation is affected.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 8 * 1024);
    }
}

/// Gives back what [`droppable`] finds for this process, and the free heap. Called on the
/// main thread, from a frame that is not returned from before the next deep call; the few
/// pages below the caller's frame that the call itself uses are kept. Returns how many
/// bytes were dropped (0 when `/proc/self/smaps` cannot be read: then only the heap).
pub fn shed() -> usize {
    // SAFETY: malloc_trim only returns free heap memory to the kernel; no pointer changes.
    unsafe { nix::libc::malloc_trim(0) };
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let here = 0u8;
    // The frames of this function and of what it calls (madvise, a few hundred bytes):
    // kept with a margin of 16 KiB below this local.
    let keep = std::ptr::addr_of!(here) as usize - 4 * PAGE;
    let ranges = droppable(&smaps, &exe, keep);
    drop(smaps);
    let mut dropped = 0;
    for range in ranges {
        // SAFETY: each range is either a read-only private mapping of the executable file
        // with no page written since it was mapped (dropped pages are read again from the
        // file, which the kernel keeps from being written while it runs), or the part of
        // this thread's stack at least 16 KiB below the current frame, which holds no
        // live frame (it comes back as zero pages). No Rust reference points into either.
        let done = unsafe {
            nix::libc::madvise(
                range.start as *mut nix::libc::c_void,
                range.end - range.start,
                nix::libc::MADV_DONTNEED,
            )
        };
        if done == 0 {
            dropped += range.end - range.start;
        }
    }
    std::hint::black_box(&here);
    dropped
}
