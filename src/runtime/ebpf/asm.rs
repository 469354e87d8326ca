//! eBPF instructions, their byte encoding and a small assembler with forward labels.
//!
//! An instruction is the kernel's `struct bpf_insn` (linux/bpf.h): an opcode byte, the
//! destination and source registers packed in one byte (low nibble dst on little-endian
//! machines, high nibble on big-endian ones, as the bitfield's layout there), a signed
//! 16-bit jump offset and a signed 32-bit immediate, in the machine's byte order; 8 bytes.
//! Only the instructions a cgroup device program needs have constructors: 32-bit loads
//! from memory, 32-bit ALU with an immediate or a register, `!=` jumps and `exit`.
//! [`Insn::decode`] and [`Insn`]'s `Display` (the kernel verifier's notation) are the
//! reverse, for the interpreter, the tests and the book.

use std::fmt;

/// Bytes per instruction.
pub const INSN_SIZE: usize = 8;

// Opcode parts (linux/bpf_common.h, linux/bpf.h): class | size | mode, class | op | source.
pub(crate) const CLASS_LDX: u8 = 0x01;
pub(crate) const CLASS_ALU: u8 = 0x04;
pub(crate) const CLASS_JMP: u8 = 0x05;
pub(crate) const SIZE_W: u8 = 0x00;
pub(crate) const MODE_MEM: u8 = 0x60;
pub(crate) const SRC_K: u8 = 0x00;
pub(crate) const SRC_X: u8 = 0x08;
pub(crate) const ALU_AND: u8 = 0x50;
pub(crate) const ALU_RSH: u8 = 0x70;
pub(crate) const ALU_MOV: u8 = 0xb0;
pub(crate) const JMP_JA: u8 = 0x00;
pub(crate) const JMP_JNE: u8 = 0x50;
pub(crate) const JMP_EXIT: u8 = 0x90;

/// A register. R0 holds the return value, R1 the context pointer on entry, R10 the frame
/// pointer (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reg {
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

impl Reg {
    const ALL: [Reg; 11] = [
        Reg::R0,
        Reg::R1,
        Reg::R2,
        Reg::R3,
        Reg::R4,
        Reg::R5,
        Reg::R6,
        Reg::R7,
        Reg::R8,
        Reg::R9,
        Reg::R10,
    ];

    /// Its number, 0 to 10.
    pub fn index(self) -> usize {
        self as usize
    }

    fn from_index(index: u8) -> Option<Reg> {
        Reg::ALL.get(usize::from(index)).copied()
    }
}

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: Reg,
    pub src: Reg,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`, zero-extended to 64 bits.
    pub fn load_u32(dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
    }

    /// `w_dst &= imm` (32-bit; the upper half of the register becomes zero).
    pub fn and32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::new(CLASS_ALU | ALU_AND | SRC_K, dst, Reg::R0, 0, imm)
    }

    /// `w_dst >>= imm` (32-bit logical shift).
    pub fn rsh32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::new(CLASS_ALU | ALU_RSH | SRC_K, dst, Reg::R0, 0, imm)
    }

    /// `w_dst = imm` (32-bit).
    pub fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::new(CLASS_ALU | ALU_MOV | SRC_K, dst, Reg::R0, 0, imm)
    }

    /// `w_dst = w_src` (32-bit).
    pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        Insn::new(CLASS_ALU | ALU_MOV | SRC_X, dst, src, 0, 0)
    }

    /// `if dst != imm goto +off` (64-bit compare; `imm` is sign-extended).
    pub fn jne_imm(dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(CLASS_JMP | JMP_JNE | SRC_K, dst, Reg::R0, off, imm)
    }

    /// `if dst != src goto +off` (64-bit compare).
    pub fn jne_reg(dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(CLASS_JMP | JMP_JNE | SRC_X, dst, src, off, 0)
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn::new(CLASS_JMP | JMP_JA, Reg::R0, Reg::R0, off, 0)
    }

    /// `exit`: return R0.
    pub fn exit() -> Insn {
        Insn::new(CLASS_JMP | JMP_EXIT, Reg::R0, Reg::R0, 0, 0)
    }

    /// Whether this is a jump with a target (`off` is a displacement).
    pub fn is_jump(&self) -> bool {
        self.code & 0x07 == CLASS_JMP && self.code & 0xf0 != JMP_EXIT
    }

    /// The 8 bytes of `struct bpf_insn` in this machine's byte order.
    pub fn encode(&self) -> [u8; INSN_SIZE] {
        let (dst, src) = (self.dst as u8, self.src as u8);
        let regs = if cfg!(target_endian = "little") {
            dst | (src << 4)
        } else {
            (dst << 4) | src
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// The reverse of [`encode`](Insn::encode); `None` for a register number above 10.
    pub fn decode(bytes: [u8; INSN_SIZE]) -> Option<Insn> {
        let (dst, src) = if cfg!(target_endian = "little") {
            (bytes[1] & 0x0f, bytes[1] >> 4)
        } else {
            (bytes[1] >> 4, bytes[1] & 0x0f)
        };
        Some(Insn {
            code: bytes[0],
            dst: Reg::from_index(dst)?,
            src: Reg::from_index(src)?,
            off: i16::from_ne_bytes([bytes[2], bytes[3]]),
            imm: i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        })
    }
}

/// A whole program as the bytes `BPF_PROG_LOAD` takes.
pub fn encode_all(program: &[Insn]) -> Vec<u8> {
    program.iter().flat_map(Insn::encode).collect()
}

/// The verifier's notation (`r2 = *(u32 *)(r1 +0)`, `w2 &= 65535`, `if r2 != 0x2 goto
/// pc+5`, `exit`), as `bpftool prog dump xlated` prints it.
impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dst, src) = (self.dst.index(), self.src.index());
        let class = self.code & 0x07;
        let op = self.code & 0xf0;
        let from_reg = self.code & SRC_X != 0;
        match (class, op) {
            (CLASS_LDX, _) if self.code == CLASS_LDX | MODE_MEM | SIZE_W => {
                write!(f, "r{dst} = *(u32 *)(r{src} {:+})", self.off)
            }
            (CLASS_ALU, ALU_AND | ALU_RSH | ALU_MOV) => {
                let symbol = match op {
                    ALU_AND => "&=",
                    ALU_RSH => ">>=",
                    _ => "=",
                };
                if from_reg {
                    write!(f, "w{dst} {symbol} w{src}")
                } else {
                    write!(f, "w{dst} {symbol} {}", self.imm)
                }
            }
            (CLASS_JMP, JMP_EXIT) => f.write_str("exit"),
            (CLASS_JMP, JMP_JA) => write!(f, "goto pc{:+}", self.off),
            (CLASS_JMP, JMP_JNE) if from_reg => {
                write!(f, "if r{dst} != r{src} goto pc{:+}", self.off)
            }
            (CLASS_JMP, JMP_JNE) => {
                write!(f, "if r{dst} != {:#x} goto pc{:+}", self.imm, self.off)
            }
            _ => write!(
                f,
                "(code {:#04x} dst r{dst} src r{src} off {} imm {})",
                self.code, self.off, self.imm
            ),
        }
    }
}

/// A jump target, bound to a position later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Why a program could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("a jump at instruction {at} goes to a label that was never placed")]
    Unbound { at: usize },
    #[error("a jump at instruction {at} goes backwards or nowhere (to {target})")]
    Backwards { at: usize, target: usize },
    #[error("a jump at instruction {at} is too long ({distance} instructions)")]
    TooFar { at: usize, distance: usize },
    #[error("a jump at instruction {at} goes past the last instruction")]
    PastTheEnd { at: usize },
}

/// Builds a program: instructions in order, jumps to labels placed later (only forward
/// jumps: a program without loops terminates, and the verifier's work is linear).
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Each label's position once placed.
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of each jump to patch.
    jumps: Vec<(usize, Label)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub fn place(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    pub fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// Pushes a jump (its `off` is ignored) whose target is `label`.
    pub fn jump(&mut self, insn: Insn, label: Label) {
        self.jumps.push((self.insns.len(), label));
        self.insns.push(insn);
    }

    /// The program, every jump's offset filled in.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for (at, label) in self.jumps {
            let target = self.labels[label.0].ok_or(AsmError::Unbound { at })?;
            if target <= at {
                return Err(AsmError::Backwards { at, target });
            }
            if target >= self.insns.len() {
                return Err(AsmError::PastTheEnd { at });
            }
            let distance = target - at - 1;
            let off = i16::try_from(distance).map_err(|_| AsmError::TooFar { at, distance })?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}
