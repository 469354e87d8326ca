//! The assembler's bytes against `struct bpf_insn` as the kernel lays it out, the labels,
//! the notation, and the interpreter's strictness. No root needed.

use super::asm::{Asm, AsmError, Insn, Reg, encode_all};
use super::interp::{InterpError, run};

/// Each constructor's bytes, as clang's BPF backend and the kernel's macros
/// (`BPF_LDX_MEM(BPF_W, …)`, `BPF_ALU32_IMM(BPF_AND, …)`, …) lay them out on x86_64.
#[test]
#[cfg(target_endian = "little")]
fn each_instruction_has_the_kernels_layout() {
    let cases = [
        // opcode, dst | src << 4, off (le16), imm (le32)
        (
            Insn::load_u32(Reg::R2, Reg::R1, 0),
            [0x61, 0x12, 0, 0, 0, 0, 0, 0],
        ),
        (
            Insn::load_u32(Reg::R5, Reg::R1, 8),
            [0x61, 0x15, 8, 0, 0, 0, 0, 0],
        ),
        (
            Insn::and32_imm(Reg::R2, 0xffff),
            [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0],
        ),
        (
            Insn::rsh32_imm(Reg::R3, 16),
            [0x74, 0x03, 0, 0, 16, 0, 0, 0],
        ),
        (Insn::mov32_imm(Reg::R0, 1), [0xb4, 0x00, 0, 0, 1, 0, 0, 0]),
        (
            Insn::mov32_reg(Reg::R1, Reg::R3),
            [0xbc, 0x31, 0, 0, 0, 0, 0, 0],
        ),
        (
            Insn::jne_imm(Reg::R4, 136, 3),
            [0x55, 0x04, 3, 0, 136, 0, 0, 0],
        ),
        (
            Insn::jne_imm(Reg::R2, -1, -2),
            [0x55, 0x02, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Insn::jne_reg(Reg::R1, Reg::R3, 7),
            [0x5d, 0x31, 7, 0, 0, 0, 0, 0],
        ),
        (Insn::ja(1), [0x05, 0x00, 1, 0, 0, 0, 0, 0]),
        (Insn::exit(), [0x95, 0x00, 0, 0, 0, 0, 0, 0]),
    ];
    for (insn, bytes) in cases {
        assert_eq!(insn.encode(), bytes, "{insn}");
        assert_eq!(Insn::decode(bytes), Some(insn));
    }
    assert_eq!(Insn::decode([0x95, 0x0b, 0, 0, 0, 0, 0, 0]), None, "r11");
}

#[test]
fn the_notation_is_the_verifiers() {
    let listing: Vec<String> = [
        Insn::load_u32(Reg::R2, Reg::R1, 0),
        Insn::load_u32(Reg::R4, Reg::R1, 4),
        Insn::and32_imm(Reg::R2, 0xffff),
        Insn::rsh32_imm(Reg::R3, 16),
        Insn::mov32_reg(Reg::R1, Reg::R3),
        Insn::jne_imm(Reg::R2, 2, 5),
        Insn::jne_reg(Reg::R1, Reg::R3, 2),
        Insn::ja(1),
        Insn::mov32_imm(Reg::R0, 0),
        Insn::exit(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        listing,
        [
            "r2 = *(u32 *)(r1 +0)",
            "r4 = *(u32 *)(r1 +4)",
            "w2 &= 65535",
            "w3 >>= 16",
            "w1 = w3",
            "if r2 != 0x2 goto pc+5",
            "if r1 != r3 goto pc+2",
            "goto pc+1",
            "w0 = 0",
            "exit",
        ]
    );
}

#[test]
fn labels_become_forward_offsets() {
    let mut asm = Asm::new();
    let skip = asm.label();
    let end = asm.label();
    asm.push(Insn::mov32_imm(Reg::R0, 0));
    asm.jump(Insn::jne_imm(Reg::R0, 0, 0), skip);
    asm.jump(Insn::ja(0), end);
    asm.push(Insn::mov32_imm(Reg::R0, 5));
    asm.place(skip);
    asm.push(Insn::mov32_imm(Reg::R0, 7));
    asm.place(end);
    asm.push(Insn::exit());
    let program = asm.finish().unwrap();
    assert_eq!(program[1].off, 2, "over the ja and the mov");
    assert_eq!(program[2].off, 2);
    // r0 == 0: no branch at 1, then the ja skips both movs: r0 stays 0.
    assert_eq!(run(&encode_all(&program), &[]), Ok(0));
}

#[test]
fn bad_labels_are_refused() {
    let mut asm = Asm::new();
    let never = asm.label();
    asm.jump(Insn::ja(0), never);
    asm.push(Insn::exit());
    assert_eq!(asm.finish(), Err(AsmError::Unbound { at: 0 }));

    let mut asm = Asm::new();
    let back = asm.label();
    asm.place(back);
    asm.push(Insn::mov32_imm(Reg::R0, 0));
    asm.jump(Insn::ja(0), back);
    assert_eq!(asm.finish(), Err(AsmError::Backwards { at: 1, target: 0 }));

    let mut asm = Asm::new();
    let end = asm.label();
    asm.jump(Insn::ja(0), end);
    asm.place(end);
    assert_eq!(asm.finish(), Err(AsmError::PastTheEnd { at: 0 }));
}

#[test]
fn the_interpreter_is_as_strict_as_the_verifier() {
    let ctx = [1u8, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0];
    let program = |insns: &[Insn]| encode_all(insns);
    // A plain read of the context.
    assert_eq!(
        run(
            &program(&[Insn::load_u32(Reg::R0, Reg::R1, 8), Insn::exit()]),
            &ctx
        ),
        Ok(3)
    );
    let refused = [
        (
            program(&[Insn::mov32_reg(Reg::R0, Reg::R2), Insn::exit()]),
            InterpError::Uninit { at: 0, reg: 2 },
        ),
        (
            program(&[Insn::exit()]),
            InterpError::Uninit { at: 0, reg: 0 },
        ),
        (
            program(&[Insn::load_u32(Reg::R0, Reg::R1, 12), Insn::exit()]),
            InterpError::ContextAccess { at: 0, offset: 12 },
        ),
        (
            program(&[Insn::load_u32(Reg::R0, Reg::R1, 2), Insn::exit()]),
            InterpError::ContextAccess { at: 0, offset: 2 },
        ),
        (
            program(&[Insn::mov32_reg(Reg::R0, Reg::R1), Insn::exit()]),
            InterpError::PointerArithmetic { at: 0, reg: 1 },
        ),
        (
            program(&[
                Insn::mov32_imm(Reg::R2, 0),
                Insn::load_u32(Reg::R0, Reg::R2, 0),
                Insn::exit(),
            ]),
            InterpError::NotContext { at: 1, reg: 2 },
        ),
        (
            program(&[Insn::mov32_imm(Reg::R10, 0), Insn::exit()]),
            InterpError::FramePointer { at: 0 },
        ),
        (
            program(&[Insn::mov32_imm(Reg::R0, 0), Insn::ja(-2), Insn::exit()]),
            InterpError::Jump { at: 1 },
        ),
        (
            program(&[Insn::mov32_imm(Reg::R0, 0), Insn::ja(1), Insn::exit()]),
            InterpError::Jump { at: 1 },
        ),
        (
            program(&[Insn::mov32_imm(Reg::R0, 0)]),
            InterpError::FellOff,
        ),
        (
            vec![0x18, 0, 0, 0, 0, 0, 0, 0],
            InterpError::Opcode { at: 0, code: 0x18 },
        ),
        (vec![0x95, 0, 0], InterpError::Length(3)),
    ];
    for (bytes, error) in refused {
        assert_eq!(run(&bytes, &ctx), Err(error));
    }
}
