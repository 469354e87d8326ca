//! A reference interpreter for the instructions [`super::asm`] emits, run on the encoded
//! bytes, so that a test checks the encoding and the meaning of a program at once (the
//! seccomp tests do the same for classic BPF). It is as strict as the kernel's verifier
//! where kiln's programs could go wrong: reading a register never written, reading the
//! context out of bounds or unaligned, using the context pointer as a number, jumping
//! backwards or out of the program, falling off its end, an opcode it does not know.
//! It is not used to filter anything: the kernel runs the real program.

use super::asm::{
    ALU_AND, ALU_MOV, ALU_RSH, CLASS_ALU, CLASS_JMP, CLASS_LDX, INSN_SIZE, Insn, JMP_EXIT, JMP_JA,
    JMP_JNE, MODE_MEM, Reg, SIZE_W, SRC_X,
};

/// What a register holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Uninit,
    Scalar(u64),
    /// The context pointer plus an offset.
    Context(i64),
}

/// Why the interpreter (and the verifier) refuses a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("the program is not a whole number of instructions ({0} bytes)")]
    Length(usize),
    #[error("instruction {0}: bad register number")]
    BadRegister(usize),
    #[error("instruction {at}: unknown or unsupported opcode {code:#04x}")]
    Opcode { at: usize, code: u8 },
    #[error("instruction {at}: r{reg} is read before it is written")]
    Uninit { at: usize, reg: usize },
    #[error("instruction {at}: r{reg} is not the context pointer")]
    NotContext { at: usize, reg: usize },
    #[error("instruction {at}: the pointer in r{reg} is used as a number")]
    PointerArithmetic { at: usize, reg: usize },
    #[error("instruction {at}: context read at offset {offset} is out of bounds or unaligned")]
    ContextAccess { at: usize, offset: i64 },
    #[error("instruction {at}: r10 is read-only")]
    FramePointer { at: usize },
    #[error("instruction {at}: the jump goes backwards or out of the program")]
    Jump { at: usize },
    #[error("the program runs off its end")]
    FellOff,
}

/// Runs `program` (encoded instructions) with R1 pointing at `context`; returns R0 at
/// `exit`.
pub fn run(program: &[u8], context: &[u8]) -> Result<u64, InterpError> {
    if program.len() % INSN_SIZE != 0 {
        return Err(InterpError::Length(program.len()));
    }
    let insns = program
        .chunks_exact(INSN_SIZE)
        .enumerate()
        .map(|(at, chunk)| {
            let bytes: [u8; INSN_SIZE] = chunk.try_into().expect("chunks of INSN_SIZE");
            Insn::decode(bytes).ok_or(InterpError::BadRegister(at))
        })
        .collect::<Result<Vec<Insn>, _>>()?;
    let mut regs = [Value::Uninit; 11];
    regs[Reg::R1.index()] = Value::Context(0);
    let mut pc = 0usize;
    loop {
        let Some(insn) = insns.get(pc) else {
            return Err(InterpError::FellOff);
        };
        let at = pc;
        let (dst, src) = (insn.dst.index(), insn.src.index());
        let scalar = |reg: usize, regs: &[Value; 11]| match regs[reg] {
            Value::Scalar(value) => Ok(value),
            Value::Uninit => Err(InterpError::Uninit { at, reg }),
            Value::Context(_) => Err(InterpError::PointerArithmetic { at, reg }),
        };
        if insn.code & 0x07 != CLASS_JMP && dst == Reg::R10.index() {
            return Err(InterpError::FramePointer { at });
        }
        pc += 1;
        match (insn.code & 0x07, insn.code & 0xf0) {
            (CLASS_LDX, _) if insn.code == CLASS_LDX | MODE_MEM | SIZE_W => {
                let base = match regs[src] {
                    Value::Context(base) => base,
                    Value::Uninit => return Err(InterpError::Uninit { at, reg: src }),
                    Value::Scalar(_) => return Err(InterpError::NotContext { at, reg: src }),
                };
                let offset = base + i64::from(insn.off);
                let word = usize::try_from(offset)
                    .ok()
                    .filter(|start| start % 4 == 0)
                    .and_then(|start| context.get(start..start + 4))
                    .ok_or(InterpError::ContextAccess { at, offset })?;
                let word = u32::from_ne_bytes(word.try_into().expect("four bytes"));
                regs[dst] = Value::Scalar(u64::from(word));
            }
            (CLASS_ALU, op @ (ALU_AND | ALU_RSH | ALU_MOV)) => {
                let operand = if insn.code & SRC_X != 0 {
                    scalar(src, &regs)? as u32
                } else {
                    insn.imm as u32
                };
                let result = match op {
                    ALU_MOV => operand,
                    ALU_AND => (scalar(dst, &regs)? as u32) & operand,
                    // The kernel masks the shift to the operand's width.
                    _ => (scalar(dst, &regs)? as u32) >> (operand & 31),
                };
                regs[dst] = Value::Scalar(u64::from(result));
            }
            (CLASS_JMP, JMP_EXIT) => return scalar(Reg::R0.index(), &regs),
            (CLASS_JMP, op @ (JMP_JA | JMP_JNE)) => {
                let taken = match op {
                    JMP_JA => true,
                    _ => {
                        let left = scalar(dst, &regs)?;
                        let right = if insn.code & SRC_X != 0 {
                            scalar(src, &regs)?
                        } else {
                            i64::from(insn.imm) as u64
                        };
                        left != right
                    }
                };
                if insn.off < 0 || pc + insn.off as usize >= insns.len() {
                    return Err(InterpError::Jump { at });
                }
                if taken {
                    pc += insn.off as usize;
                }
            }
            _ => {
                return Err(InterpError::Opcode {
                    at,
                    code: insn.code,
                });
            }
        }
    }
}
