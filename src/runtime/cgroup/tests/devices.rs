//! Device rules and their eBPF program, without a kernel: the v1 text, the program's
//! instructions and bytes, and the interpreter's verdict against the rules' own for every
//! request of a grid and for random rule lists. (The kernel verifies and runs the same
//! program in `devices_real`.)

use proptest::prelude::*;

use crate::runtime::cgroup::{
    Access, DEVICE_RULES, DeviceKind, DeviceProgramError, DeviceRule, allowed, device_program,
    program_context,
};
use crate::runtime::ebpf::{Insn, encode_all, run};

/// The verdict of `rules`' program on a request, through the interpreter.
fn verdict(rules: &[DeviceRule], kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
    let program = encode_all(&device_program(rules).unwrap());
    match run(&program, &program_context(kind, major, minor, access)) {
        Ok(0) => false,
        Ok(1) => true,
        other => panic!("{other:?}"),
    }
}

fn access(bits: u32) -> Access {
    Access::from_bits(bits)
}

#[test]
fn the_rules_are_dockers_in_v1_syntax() {
    let lines: Vec<String> = DEVICE_RULES.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
            "c 10:200 rwm",
        ]
    );
}

/// The whole program, as `bpftool prog dump xlated` prints it (the book shows it too).
const LISTING: &str = "\
r2 = *(u32 *)(r1 +0)
w2 &= 65535
r3 = *(u32 *)(r1 +0)
w3 >>= 16
r4 = *(u32 *)(r1 +4)
r5 = *(u32 *)(r1 +8)
if r2 != 0x2 goto pc+5
w1 = w3
w1 &= 1
if r1 != r3 goto pc+2
w0 = 1
exit
if r2 != 0x1 goto pc+5
w1 = w3
w1 &= 1
if r1 != r3 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x1 goto pc+3
if r5 != 0x3 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x1 goto pc+3
if r5 != 0x5 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x1 goto pc+3
if r5 != 0x7 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x1 goto pc+3
if r5 != 0x8 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x1 goto pc+3
if r5 != 0x9 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x5 goto pc+3
if r5 != 0x0 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0x5 goto pc+3
if r5 != 0x2 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+3
if r4 != 0x88 goto pc+2
w0 = 1
exit
if r2 != 0x2 goto pc+4
if r4 != 0xa goto pc+3
if r5 != 0xc8 goto pc+2
w0 = 1
exit
w0 = 0
exit
";

#[test]
fn the_default_program_reads_as_the_listing() {
    let program = device_program(&DEVICE_RULES).unwrap();
    let listing: String = program.iter().map(|insn| format!("{insn}\n")).collect();
    assert_eq!(listing, LISTING);
}

#[test]
fn the_book_shows_the_default_program() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/inside/cgroups.md"),
    )
    .unwrap();
    let numbered: String = LISTING
        .lines()
        .enumerate()
        .map(|(i, line)| format!("{i:2}: {line}\n"))
        .collect();
    assert!(
        page.contains(&numbered),
        "book/src/inside/cgroups.md must show the program as:\n{numbered}"
    );
}

#[test]
#[cfg(target_endian = "little")]
fn a_one_rule_program_has_these_bytes() {
    let rule = DeviceRule {
        kind: DeviceKind::Block,
        major: Some(8),
        minor: None,
        access: Access::READ,
    };
    let hex: Vec<String> = encode_all(&device_program(&[rule]).unwrap())
        .chunks(8)
        .map(|insn| insn.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert_eq!(
        hex,
        [
            "6112000000000000", // r2 = *(u32 *)(r1 +0)
            "54020000ffff0000", // w2 &= 0xffff
            "6113000000000000", // r3 = *(u32 *)(r1 +0)
            "7403000010000000", // w3 >>= 16
            "6114040000000000", // r4 = *(u32 *)(r1 +4)
            "6115080000000000", // r5 = *(u32 *)(r1 +8)
            "5502060001000000", // if r2 != 1 (block) goto +6
            "bc31000000000000", // w1 = w3
            "5401000002000000", // w1 &= 2 (read)
            "5d31030000000000", // if r1 != r3 goto +3
            "5504020008000000", // if r4 != 8 goto +2
            "b400000001000000", // w0 = 1
            "9500000000000000", // exit
            "b400000000000000", // w0 = 0
            "9500000000000000", // exit
        ]
    );
}

#[test]
fn the_program_decides_as_the_rules_on_a_grid_of_requests() {
    let majors = [
        0,
        1,
        4,
        5,
        7,
        8,
        10,
        136,
        137,
        254,
        4095,
        i32::MAX as u32,
        u32::MAX,
    ];
    let minors = [0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 65535, 1 << 20, u32::MAX];
    let program = encode_all(&device_program(&DEVICE_RULES).unwrap());
    let mut allowed_count = 0;
    for kind in [DeviceKind::Char, DeviceKind::Block] {
        for major in majors {
            for minor in minors {
                for bits in 0..8 {
                    let wanted = access(bits);
                    let expected = allowed(&DEVICE_RULES, kind, major, minor, wanted);
                    let got = run(&program, &program_context(kind, major, minor, wanted));
                    assert_eq!(
                        got,
                        Ok(u64::from(expected)),
                        "{}: {major}:{minor} {wanted}",
                        kind.letter()
                    );
                    allowed_count += usize::from(expected);
                }
            }
        }
    }
    assert!(allowed_count > 100, "{allowed_count}");
}

#[test]
fn the_attacks_of_issue_10_are_denied_and_the_standard_devices_allowed() {
    let rules = &DEVICE_RULES;
    let (r, w, m, rw) = (
        Access::READ,
        Access::WRITE,
        Access::MKNOD,
        Access::READ.union(Access::WRITE),
    );
    // A /dev/kmsg twin (c 1:11) may be made but not opened; the host's disk neither.
    assert!(verdict(rules, DeviceKind::Char, 1, 11, m));
    assert!(!verdict(rules, DeviceKind::Char, 1, 11, w));
    assert!(!verdict(rules, DeviceKind::Char, 1, 11, r));
    assert!(verdict(rules, DeviceKind::Block, 8, 0, m));
    assert!(!verdict(rules, DeviceKind::Block, 8, 0, r));
    assert!(!verdict(rules, DeviceKind::Block, 8, 0, rw));
    // /dev/mem (c 1:1), a block device under a char device's numbers (b 1:3).
    assert!(!verdict(rules, DeviceKind::Char, 1, 1, r));
    assert!(!verdict(rules, DeviceKind::Block, 1, 3, rw));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 0),
        (136, 7),
        (10, 200),
    ] {
        assert!(
            verdict(rules, DeviceKind::Char, major, minor, rw),
            "{major}:{minor}"
        );
        assert!(
            verdict(rules, DeviceKind::Char, major, minor, m),
            "{major}:{minor}"
        );
    }
    // /dev/console (c 5:1) is not among them, as in runc.
    assert!(!verdict(rules, DeviceKind::Char, 5, 1, rw));
}

#[test]
fn numbers_the_program_cannot_hold_are_refused() {
    let rule = DeviceRule {
        kind: DeviceKind::Char,
        major: Some(u32::MAX),
        minor: None,
        access: Access::ALL,
    };
    assert_eq!(
        device_program(&[rule]),
        Err(DeviceProgramError::Number(u32::MAX))
    );
    // No rule at all: deny everything.
    assert_eq!(device_program(&[]).unwrap(), {
        let mut expected = device_program(&DEVICE_RULES).unwrap()[..6].to_vec();
        expected.extend([
            Insn::mov32_imm(crate::runtime::ebpf::Reg::R0, 0),
            Insn::exit(),
        ]);
        expected
    });
}

fn any_rule() -> impl Strategy<Value = DeviceRule> {
    let kind = prop_oneof![
        Just(DeviceKind::Char),
        Just(DeviceKind::Block),
        Just(DeviceKind::Any)
    ];
    let number = prop_oneof![Just(None), (0u32..6).prop_map(Some)];
    (kind, number.clone(), number, 1u32..8).prop_map(|(kind, major, minor, bits)| DeviceRule {
        kind,
        major,
        minor,
        access: access(bits),
    })
}

proptest! {
    #[test]
    fn any_rule_list_compiles_to_a_program_that_agrees_with_it(
        rules in prop::collection::vec(any_rule(), 0..8),
        block in any::<bool>(),
        major in 0u32..7,
        minor in 0u32..7,
        bits in 0u32..8,
    ) {
        let kind = if block { DeviceKind::Block } else { DeviceKind::Char };
        let wanted = access(bits);
        prop_assert_eq!(
            verdict(&rules, kind, major, minor, wanted),
            allowed(&rules, kind, major, minor, wanted)
        );
    }
}
