//! Device access rules: which device nodes a container may create (`mknod`) and open
//! (read, write), as the kernel checks them — cgroup v1's `devices.deny`/`devices.allow`
//! files, and on cgroup v2 a `BPF_CGROUP_DEVICE` eBPF program written here from the same
//! rules ([`device_program`]). Pure: rules in, text or instructions out.
//!
//! Every list is an allow-list over "deny everything": a request (a type, a major and
//! minor number, the access wanted) is allowed when one rule has its type (or `a`), its
//! major and minor (or `*`), and all of the access wanted — as v1's `devcgroup` decides.
//!
//! The program, for `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type` is `access << 16 | type`), loads the four values into r2..r5 once, then
//! tests the rules in order, each a block that jumps to the next block on the first field
//! that does not match and returns 1 (allow) at its end; after the last, it returns 0
//! (deny: the open or mknod fails with EPERM). runc's `devicefilter` (after crun's
//! `ebpf.c`) emits the same shape.

use std::fmt;

use crate::runtime::ebpf::{Asm, AsmError, Insn, Reg};

/// The kind of device node a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Char,
    Block,
    /// Both (v1's `a`).
    Any,
}

impl DeviceKind {
    /// v1's letter: `c`, `b` or `a`.
    pub fn letter(self) -> char {
        match self {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::Any => 'a',
        }
    }

    /// `BPF_DEVCG_DEV_*` (linux/bpf.h); `None` for [`DeviceKind::Any`].
    pub fn bpf_type(self) -> Option<u32> {
        match self {
            DeviceKind::Block => Some(1),
            DeviceKind::Char => Some(2),
            DeviceKind::Any => None,
        }
    }
}

/// A set of accesses: `m` (mknod), `r` (open for reading), `w` (open for writing). The
/// bits are those of `BPF_DEVCG_ACC_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access(u32);

impl Access {
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const ALL: Access = Access(7);

    /// The accesses of `BPF_DEVCG_ACC_*` bits; other bits are ignored.
    pub const fn from_bits(bits: u32) -> Access {
        Access(bits & 7)
    }

    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for Access {
    /// `rwm` order, as v1 prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One allow rule: `kind major:minor access`, `None` numbers meaning any (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    const fn new(kind: DeviceKind, major: Option<u32>, minor: Option<u32>, access: Access) -> Self {
        DeviceRule {
            kind,
            major,
            minor,
            access,
        }
    }

    /// Whether the rule allows `access` to the device `kind major:minor`.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
        (self.kind == DeviceKind::Any || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
            && self.access.contains(access)
    }
}

impl fmt::Display for DeviceRule {
    /// v1's `devices.allow` syntax: `c 1:3 rwm`, `b *:* m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// Whether `rules` allow `access` to `kind major:minor` (deny unless a rule allows).
pub fn allowed(
    rules: &[DeviceRule],
    kind: DeviceKind,
    major: u32,
    minor: u32,
    access: Access,
) -> bool {
    rules
        .iter()
        .any(|rule| rule.allows(kind, major, minor, access))
}

const RWM: Access = Access::ALL;
const M: Access = Access::MKNOD;
const C: DeviceKind = DeviceKind::Char;

/// The rules of every container, Docker's (runc's `AllowedDevices`): any device node may
/// be made (`m`) — CAP_MKNOD is in the default capability set — but only these may be
/// opened, so a node made for the host's disk or `/dev/kmsg` cannot be read or written.
pub const DEVICE_RULES: [DeviceRule; 11] = [
    DeviceRule::new(C, None, None, M),
    DeviceRule::new(DeviceKind::Block, None, None, M),
    DeviceRule::new(C, Some(1), Some(3), RWM),    // null
    DeviceRule::new(C, Some(1), Some(5), RWM),    // zero
    DeviceRule::new(C, Some(1), Some(7), RWM),    // full
    DeviceRule::new(C, Some(1), Some(8), RWM),    // random
    DeviceRule::new(C, Some(1), Some(9), RWM),    // urandom
    DeviceRule::new(C, Some(5), Some(0), RWM),    // tty
    DeviceRule::new(C, Some(5), Some(2), RWM),    // ptmx
    DeviceRule::new(C, Some(136), None, RWM),     // pts/*
    DeviceRule::new(C, Some(10), Some(200), RWM), // net/tun
];

/// Why rules cannot become a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceProgramError {
    #[error("device number {0} is too large (at most {max})", max = i32::MAX)]
    Number(u32),
    #[error(transparent)]
    Asm(#[from] AsmError),
}

/// The `BPF_PROG_TYPE_CGROUP_DEVICE` program that allows what `rules` allow and denies the
/// rest.
pub fn device_program(rules: &[DeviceRule]) -> Result<Vec<Insn>, DeviceProgramError> {
    let imm = |n: u32| i32::try_from(n).map_err(|_| DeviceProgramError::Number(n));
    let mut asm = Asm::new();
    // r2 = type, r3 = access, r4 = major, r5 = minor.
    asm.push(Insn::load_u32(Reg::R2, Reg::R1, 0));
    asm.push(Insn::and32_imm(Reg::R2, 0xffff));
    asm.push(Insn::load_u32(Reg::R3, Reg::R1, 0));
    asm.push(Insn::rsh32_imm(Reg::R3, 16));
    asm.push(Insn::load_u32(Reg::R4, Reg::R1, 4));
    asm.push(Insn::load_u32(Reg::R5, Reg::R1, 8));
    for rule in rules {
        let next = asm.label();
        if let Some(bpf_type) = rule.kind.bpf_type() {
            asm.jump(Insn::jne_imm(Reg::R2, bpf_type as i32, 0), next);
        }
        if rule.access != Access::ALL {
            // Every access wanted must be in the rule: (access & rule) == access.
            asm.push(Insn::mov32_reg(Reg::R1, Reg::R3));
            asm.push(Insn::and32_imm(Reg::R1, rule.access.bits() as i32));
            asm.jump(Insn::jne_reg(Reg::R1, Reg::R3, 0), next);
        }
        if let Some(major) = rule.major {
            asm.jump(Insn::jne_imm(Reg::R4, imm(major)?, 0), next);
        }
        if let Some(minor) = rule.minor {
            asm.jump(Insn::jne_imm(Reg::R5, imm(minor)?, 0), next);
        }
        asm.push(Insn::mov32_imm(Reg::R0, 1));
        asm.push(Insn::exit());
        asm.place(next);
    }
    asm.push(Insn::mov32_imm(Reg::R0, 0));
    asm.push(Insn::exit());
    Ok(asm.finish()?)
}

/// The context the kernel passes the program for a request (tests, the interpreter).
pub fn program_context(kind: DeviceKind, major: u32, minor: u32, access: Access) -> [u8; 12] {
    let kind = kind.bpf_type().unwrap_or(0);
    let mut context = [0u8; 12];
    context[..4].copy_from_slice(&((access.bits() << 16) | kind).to_ne_bytes());
    context[4..8].copy_from_slice(&major.to_ne_bytes());
    context[8..].copy_from_slice(&minor.to_ne_bytes());
    context
}
