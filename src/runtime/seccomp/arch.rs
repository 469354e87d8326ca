//! The architectures kiln builds filters for: their names in each vocabulary (the
//! kernel's audit number, libseccomp's, Docker's, seccompiler's) and their system call
//! table. Data only.

use oci_spec::runtime::Arch;
use seccompiler::TargetArch;

use super::table;

/// One architecture a filter can be built for.
#[derive(Debug)]
pub(crate) struct Native {
    /// As Rust and `uname -m` name it.
    pub(crate) name: &'static str,
    /// As Docker's `includes.arches` names it.
    pub(crate) docker: &'static str,
    /// As libseccomp and the OCI spec name it.
    pub(crate) scmp: Arch,
    /// `seccomp_data.arch`.
    pub(crate) audit: u32,
    pub(crate) target: TargetArch,
    /// Name → number, sorted by name.
    table: &'static [(&'static str, u32)],
    /// x86_64's x32 ABI: system calls with bit 30 set, same audit arch. Refused.
    pub(crate) x32_bit: Option<u32>,
}

pub(crate) const X86_64: Native = Native {
    name: "x86_64",
    docker: "amd64",
    scmp: Arch::ScmpArchX86_64,
    audit: 0xc000_003e,
    target: TargetArch::x86_64,
    table: table::X86_64,
    x32_bit: Some(0x4000_0000),
};

#[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
pub(crate) const AARCH64: Native = Native {
    name: "aarch64",
    docker: "arm64",
    scmp: Arch::ScmpArchAarch64,
    audit: 0xc000_00b7,
    target: TargetArch::aarch64,
    table: table::AARCH64,
    x32_bit: None,
};

impl Native {
    /// The architecture kiln runs on.
    pub(crate) fn get() -> &'static Native {
        #[cfg(target_arch = "x86_64")]
        return &X86_64;
        #[cfg(target_arch = "aarch64")]
        return &AARCH64;
    }

    /// The number of system call `name` here, if this architecture has it.
    pub(crate) fn number(&self, name: &str) -> Option<u32> {
        self.table
            .binary_search_by(|(known, _)| (*known).cmp(name))
            .ok()
            .map(|i| self.table[i].1)
    }
}
