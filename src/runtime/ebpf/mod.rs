//! A tiny eBPF toolkit, just enough for cgroup device programs: the instruction encoding
//! and an assembler with forward labels ([`asm`]), a strict reference interpreter for the
//! tests ([`interp`]), and the bpf(2) calls that load such a program and attach it to a
//! cgroup ([`sys`]).
//!
//! Hand-written rather than a crate: the program is a dozen instruction kinds long, and the
//! eBPF crates (aya, libbpf-rs) bring an ELF loader, BTF and maps — or libbpf, a C library
//! on every machine — to load 50 instructions. The encoding is stable kernel ABI
//! (`struct bpf_insn`), and the kernel's verifier checks every program kiln loads.
//!
//! It knows nothing of device rules or of where cgroups live: `cgroup::devices` writes the
//! program, `cgroup` decides where it is attached.

pub mod asm;
pub mod interp;
pub mod sys;

pub use asm::{Asm, AsmError, INSN_SIZE, Insn, Label, Reg, encode_all};
pub use interp::{InterpError, run};
pub use sys::{BpfError, ProgramInfo};

#[cfg(test)]
mod tests;
