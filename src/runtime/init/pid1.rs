//! `kiln-init`: the init of `kiln run --init` (and `init` in kiln.kdl), like tini or
//! Docker's docker-init. It is the container's pid 1; the user's command is its child.
//!
//! - It reaps every process that ends up its child (orphans are re-parented to pid 1), so
//!   no zombie stays behind a command that does not wait for what it started.
//! - It forwards the signals it receives (SIGTERM from `kiln stop`, `kiln kill -s …`) to
//!   the command: the kernel delivers a signal to a namespace's init only if it set a
//!   handler, so a shell or program that never did would only stop with SIGKILL.
//! - It exits when the command does, with its status: the command's exit code, or 128+N
//!   when signal N ended it (as tini). Everything else in the container ends with it.
//!
//! Invoked as `kiln-init -- COMMAND [ARG]…`; the command is looked up in `PATH` (kiln's
//! default when the environment has none), as kiln does without `--init`. 127 when it is
//! not found, 126 when it cannot be run (Docker's codes).
//!
//! Not part of kiln's crate: `build.rs` compiles this file alone into a static executable
//! without std or libc (raw system calls, its own `_start`), a few KiB that run in any
//! image, and kiln embeds it (`runtime::init`), executing it from a sealed in-memory copy.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

/// The PATH of the lookup when the environment has none (Docker's, as kiln's runtime).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Signal numbers and constants (the same on x86_64 and aarch64).
const SIGCHLD: usize = 17;
/// Faults of this process itself, and terminal job control: never blocked, never forwarded
/// (tini's list): SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGTTIN, SIGTTOU, SIGSYS.
const OWN_SIGNALS: [usize; 9] = [4, 5, 6, 7, 8, 11, 21, 22, 31];
const SIG_SETMASK: usize = 2;
const WNOHANG: usize = 1;
const TIOCGPGRP: usize = 0x540F;
const TIOCSPGRP: usize = 0x5410;
const PR_SET_NAME: usize = 15;
const ENOENT: isize = 2;
const ENOTDIR: isize = 20;
const EACCES: isize = 13;
const EINTR: isize = 4;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub(crate) const WRITE: usize = 1;
    pub(crate) const RT_SIGACTION: usize = 13;
    pub(crate) const RT_SIGPROCMASK: usize = 14;
    pub(crate) const IOCTL: usize = 16;
    pub(crate) const GETPID: usize = 39;
    pub(crate) const CLONE: usize = 56;
    pub(crate) const EXECVE: usize = 59;
    pub(crate) const WAIT4: usize = 61;
    pub(crate) const KILL: usize = 62;
    pub(crate) const SETPGID: usize = 109;
    pub(crate) const RT_SIGTIMEDWAIT: usize = 128;
    pub(crate) const PRCTL: usize = 157;
    pub(crate) const EXIT_GROUP: usize = 231;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub(crate) const WRITE: usize = 64;
    pub(crate) const RT_SIGACTION: usize = 134;
    pub(crate) const RT_SIGPROCMASK: usize = 135;
    pub(crate) const IOCTL: usize = 29;
    pub(crate) const GETPID: usize = 172;
    pub(crate) const CLONE: usize = 220;
    pub(crate) const EXECVE: usize = 221;
    pub(crate) const WAIT4: usize = 260;
    pub(crate) const KILL: usize = 129;
    pub(crate) const SETPGID: usize = 154;
    pub(crate) const RT_SIGTIMEDWAIT: usize = 137;
    pub(crate) const PRCTL: usize = 167;
    pub(crate) const EXIT_GROUP: usize = 94;
}

// The kernel starts the process with the stack pointer at argc, then argv, NULL, envp,
// NULL. `_start` hands that address to `start`, on an aligned stack.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call kiln_init_start",
    "ud2",
);

// The return from a signal handler (x86_64 needs one of the process's own; aarch64's
// kernel uses its vDSO's).
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl kiln_init_restorer",
    "kiln_init_restorer:",
    "mov rax, 15",
    "syscall",
    "ud2",
);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn kiln_init_restorer();
}

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "mov x0, sp",
    "and sp, x0, #-16",
    "bl kiln_init_start",
    "brk #0",
);

/// A system call; a negative result is `-errno`.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a call and arguments the kernel may be given.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a call and arguments the kernel may be given.
    unsafe {
        asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack),
        );
    }
    ret
}

fn sys(n: usize, a: [usize; 6]) -> isize {
    // SAFETY: every call below passes valid pointers to live locals (or none).
    unsafe { syscall(n, a) }
}

fn exit(code: usize) -> ! {
    loop {
        sys(nr::EXIT_GROUP, [code, 0, 0, 0, 0, 0]);
    }
}

fn say(parts: &[&[u8]]) {
    for part in parts {
        sys(nr::WRITE, [2, part.as_ptr() as usize, part.len(), 0, 0, 0]);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(125)
}

/// The length of the C string at `p`.
///
/// # Safety
/// `p` points to a NUL-terminated string.
unsafe fn c_len(p: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: reads up to the terminating NUL, which the caller guarantees (volatile, so
    // that the loop does not become a call to strlen, which nothing here provides).
    while unsafe { p.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

/// The bytes of the C string at `p`.
///
/// # Safety
/// `p` points to a NUL-terminated string that lives as long as the process.
unsafe fn c_bytes(p: *const u8) -> &'static [u8] {
    // SAFETY: the caller's guarantee.
    unsafe { core::slice::from_raw_parts(p, c_len(p)) }
}

/// The handler of every forwarded signal. It never runs while they are blocked (they are
/// taken with sigtimedwait), but a handler makes them show as caught (`SigCgt` in
/// /proc/1/status): `kiln stop` then knows pid 1 takes the stop signal and waits for it,
/// rather than going straight to SIGKILL (while the init waits, the kernel shows its
/// waited-for signals as unblocked).
extern "C" fn nothing(_: i32) {}

/// The kernel's `struct sigaction` (x86_64 and aarch64 alike).
#[repr(C)]
struct SigAction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

fn catch(signal: usize) {
    #[cfg(target_arch = "x86_64")]
    let (flags, restorer) = (0x0400_0000u64, kiln_init_restorer as *const () as usize);
    #[cfg(target_arch = "aarch64")]
    let (flags, restorer) = (0u64, 0usize);
    let action = SigAction {
        handler: nothing as *const () as usize,
        flags,
        restorer,
        mask: !0,
    };
    sys(
        nr::RT_SIGACTION,
        [signal, &action as *const SigAction as usize, 0, 8, 0, 0],
    );
}

fn set_mask(mask: u64) {
    let mask = mask;
    sys(
        nr::RT_SIGPROCMASK,
        [SIG_SETMASK, &mask as *const u64 as usize, 0, 8, 0, 0],
    );
}

/// # Safety
/// `stack` is the process's initial stack, as the kernel laid it out.
#[unsafe(no_mangle)]
unsafe extern "C" fn kiln_init_start(stack: *const usize) -> ! {
    // SAFETY: the kernel's layout: argc, then argc argument pointers and a NULL, then the
    // environment's pointers and a NULL, all pointing to NUL-terminated strings.
    let (argv, envp) = unsafe {
        let argc = *stack;
        let argv = stack.add(1) as *const *const u8;
        (
            core::slice::from_raw_parts(argv, argc),
            argv.add(argc + 1),
        )
    };
    // SAFETY: the argument strings are NUL-terminated and live as long as the process.
    let command = match argv.get(1).map(|a| unsafe { c_bytes(*a) }) {
        Some(b"--") => &argv[2..],
        _ => argv.get(1..).unwrap_or(&[]),
    };
    if command.is_empty() {
        say(&[b"kiln-init: no command to run: kiln-init -- COMMAND [ARG]...\n"]);
        exit(2);
    }
    // Executed from a descriptor, the process is named after its number; `ps` and `top`
    // in the container should say what it is.
    sys(nr::PRCTL, [PR_SET_NAME, c"kiln-init".as_ptr() as usize, 0, 0, 0, 0]);
    let mut forwarded = !0u64;
    for signal in OWN_SIGNALS {
        forwarded &= !(1 << (signal - 1));
    }
    set_mask(forwarded);
    for signal in 1..=64 {
        if forwarded & (1 << (signal - 1)) != 0 && signal != 9 && signal != 19 {
            catch(signal);
        }
    }
    let child = sys(nr::CLONE, [SIGCHLD, 0, 0, 0, 0, 0]);
    if child < 0 {
        say(&[b"kiln-init: cannot start the command (clone failed)\n"]);
        exit(125);
    }
    if child == 0 {
        // A process group of its own that takes the terminal, if there is one (with
        // SIGTTOU blocked, as a background group must), then every signal back.
        set_mask(!0);
        sys(nr::SETPGID, [0, 0, 0, 0, 0, 0]);
        let mut group: i32 = 0;
        if sys(nr::IOCTL, [0, TIOCGPGRP, &mut group as *mut i32 as usize, 0, 0, 0]) >= 0 {
            let me = sys(nr::GETPID, [0; 6]) as i32;
            sys(nr::IOCTL, [0, TIOCSPGRP, &me as *const i32 as usize, 0, 0, 0]);
        }
        set_mask(0);
        // SAFETY: `command` is a slice of the argv array, which the kernel NULL-terminated.
        exit(unsafe { exec(command.as_ptr(), envp) });
    }
    supervise(child as usize, forwarded)
}

/// Waits for signals until the command ends: SIGCHLD reaps every child that has ended,
/// any other signal goes to the command. Exits with the command's status.
fn supervise(child: usize, forwarded: u64) -> ! {
    loop {
        let signal = sys(
            nr::RT_SIGTIMEDWAIT,
            [&forwarded as *const u64 as usize, 0, 0, 8, 0, 0],
        );
        if signal == -EINTR || signal < 0 {
            continue;
        }
        if signal as usize != SIGCHLD {
            sys(nr::KILL, [child, signal as usize, 0, 0, 0, 0]);
            continue;
        }
        loop {
            let mut status: i32 = 0;
            let reaped = sys(
                nr::WAIT4,
                [usize::MAX, &mut status as *mut i32 as usize, WNOHANG, 0, 0, 0],
            );
            if reaped <= 0 {
                break;
            }
            if reaped as usize == child {
                let signal = status & 0x7f;
                exit(if signal == 0 {
                    ((status >> 8) & 0xff) as usize
                } else {
                    128 + signal as usize
                });
            }
        }
    }
}

/// Executes the command, looked up in PATH unless it names a path; returns the exit code
/// of one that could not be run.
///
/// # Safety
/// `argv` and `envp` are NULL-terminated arrays of NUL-terminated strings.
unsafe fn exec(argv: *const *const u8, envp: *const *const u8) -> usize {
    // SAFETY: the caller's guarantee.
    let name = unsafe { c_bytes(*argv) };
    let execve = |path: *const u8| {
        sys(nr::EXECVE, [path as usize, argv as usize, envp as usize, 0, 0, 0])
    };
    if name.contains(&b'/') {
        let error = execve(name.as_ptr());
        return failed(name, error);
    }
    let mut path = DEFAULT_PATH;
    let mut e = envp;
    // SAFETY: the environment array is NULL-terminated.
    while let Some(entry) = unsafe { (*e).as_ref() } {
        // SAFETY: each entry is NUL-terminated and lives as long as the process.
        let entry = unsafe { c_bytes(entry) };
        if let Some(value) = entry.strip_prefix(b"PATH=") {
            path = value;
            break;
        }
        // SAFETY: not yet at the NULL.
        e = unsafe { e.add(1) };
    }
    let mut buffer = [0u8; 4096];
    let mut denied = None;
    for dir in path.split(|b| *b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let length = dir.len() + 1 + name.len();
        if length >= buffer.len() {
            continue;
        }
        buffer[..dir.len()].copy_from_slice(dir);
        buffer[dir.len()] = b'/';
        buffer[dir.len() + 1..length].copy_from_slice(name);
        buffer[length] = 0;
        match execve(buffer.as_ptr()) {
            error if error == -ENOENT || error == -ENOTDIR => {}
            error if error == -EACCES => {
                denied.get_or_insert(error);
            }
            error => return failed(name, error),
        }
    }
    match denied {
        Some(error) => failed(name, error),
        None => failed(name, -ENOENT),
    }
}

/// Says why `name` could not be run; Docker's exit code for it.
fn failed(name: &[u8], error: isize) -> usize {
    let (why, code): (&[u8], usize) = match -error {
        ENOENT => (b"not found in the container", 127),
        EACCES => (b"not executable (permission denied)", 126),
        ENOTDIR => (b"not found (a path component is not a directory)", 127),
        8 => (b"not an executable format (ENOEXEC)", 126),
        _ => (b"could not be executed", 126),
    };
    say(&[b"kiln-init: `", name, b"` ", why, b"\n"]);
    code
}

// The compiler may call these for copies and fills; without libc, they are ours. Byte
// loops through volatile accesses, so that they are never turned into calls to themselves.

/// # Safety
/// As C's memcpy.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's guarantee.
        unsafe { dest.add(i).write_volatile(src.add(i).read_volatile()) };
    }
    dest
}

/// # Safety
/// As C's memmove.
#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) < (src as usize) {
        for i in 0..n {
            // SAFETY: the caller's guarantee.
            unsafe { dest.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    } else {
        for i in (0..n).rev() {
            // SAFETY: the caller's guarantee.
            unsafe { dest.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    }
    dest
}

/// # Safety
/// As C's memset.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's guarantee.
        unsafe { dest.add(i).write_volatile(value as u8) };
    }
    dest
}

/// # Safety
/// As C's memcmp.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's guarantee.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// The precompiled `core` refers to it (it is built for unwinding); with `panic=abort`
/// nothing ever calls it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// # Safety
/// As C's bcmp.
#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's guarantee.
    unsafe { memcmp(a, b, n) }
}
