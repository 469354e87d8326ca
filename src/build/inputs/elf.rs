//! Reads what the dynamic loader needs to know from an ELF file: its class, byte order and
//! machine, the interpreter (PT_INTERP), DT_NEEDED, DT_SONAME and the search paths
//! (DT_RUNPATH, DT_RPATH). 32- and 64-bit, either byte order. Nothing else of the file is
//! parsed (no symbols, no relocations), so stripped or unusual objects still work.

use goblin::container::{Container, Ctx};
use goblin::elf::dynamic::{DT_RPATH, DT_RUNPATH, DT_SONAME, Dynamic};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{PT_INTERP, ProgramHeader};
use goblin::elf::{Elf, header::ELFMAG};
use goblin::strtab::Strtab;

/// The ELF identity a loader compares before accepting a library for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ElfKind {
    pub(crate) is_64: bool,
    pub(crate) little_endian: bool,
    pub(crate) machine: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct ElfInfo {
    pub(crate) kind: ElfKind,
    pub(crate) interpreter: Option<String>,
    pub(crate) soname: Option<String>,
    pub(crate) needed: Vec<String>,
    /// DT_RUNPATH entries, split at `:`.
    pub(crate) runpath: Vec<String>,
    /// DT_RPATH entries, split at `:`; empty when the object has a DT_RUNPATH, because the
    /// loader then ignores its DT_RPATH (glibc's get-dynamic-info does the same).
    pub(crate) rpath: Vec<String>,
}

/// Whether `bytes` start like an ELF file.
pub(crate) fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(ELFMAG)
}

/// The identity from the ELF header alone (enough to reject a library of another machine).
pub(crate) fn kind(bytes: &[u8]) -> Result<ElfKind, goblin::error::Error> {
    let header = Elf::parse_header(bytes)?;
    kind_of(&header)
}

fn kind_of(header: &Header) -> Result<ElfKind, goblin::error::Error> {
    Ok(ElfKind {
        is_64: header.container()? == Container::Big,
        little_endian: header.endianness()?.is_little(),
        machine: header.e_machine,
    })
}

pub(crate) fn parse(bytes: &[u8]) -> Result<ElfInfo, goblin::error::Error> {
    let header = Elf::parse_header(bytes)?;
    let kind = kind_of(&header)?;
    let ctx = Ctx::new(header.container()?, header.endianness()?);
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)?;

    let interpreter = phdrs
        .iter()
        .find(|ph| ph.p_type == PT_INTERP)
        .and_then(|ph| {
            let start = usize::try_from(ph.p_offset).ok()?;
            let len = usize::try_from(ph.p_filesz).ok()?;
            let raw = bytes.get(start..start.checked_add(len)?)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            std::str::from_utf8(&raw[..end]).ok().map(str::to_owned)
        });

    let mut info = ElfInfo {
        kind,
        interpreter,
        soname: None,
        needed: Vec::new(),
        runpath: Vec::new(),
        rpath: Vec::new(),
    };
    let Some(dynamic) = Dynamic::parse(bytes, &phdrs, ctx)? else {
        return Ok(info);
    };
    let strtab = Strtab::parse(bytes, dynamic.info.strtab, dynamic.info.strsz, 0)?;
    let string = |offset: u64| -> Result<String, goblin::error::Error> {
        usize::try_from(offset)
            .ok()
            .and_then(|o| strtab.get_at(o))
            .map(str::to_owned)
            .ok_or_else(|| {
                goblin::error::Error::Malformed(format!(
                    "dynamic string offset {offset:#x} is outside the string table"
                ))
            })
    };
    info.needed = dynamic
        .get_libraries(&strtab)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for entry in &dynamic.dyns {
        match entry.d_tag {
            DT_SONAME => info.soname = Some(string(entry.d_val)?),
            DT_RUNPATH => info.runpath.extend(split_path_list(&string(entry.d_val)?)),
            DT_RPATH => info.rpath.extend(split_path_list(&string(entry.d_val)?)),
            _ => {}
        }
    }
    if !info.runpath.is_empty() {
        info.rpath.clear();
    }
    Ok(info)
}

fn split_path_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(':').map(str::to_owned)
}

/// `$PLATFORM` for a machine, as glibc's `AT_PLATFORM` names it on common targets.
pub(crate) fn platform(kind: ElfKind) -> Option<&'static str> {
    Some(match (kind.machine, kind.is_64) {
        (header::EM_X86_64, true) => "x86_64",
        (header::EM_386, false) => "i686",
        (header::EM_AARCH64, true) => "aarch64",
        (header::EM_ARM, false) => "v7l",
        (header::EM_PPC64, true) if kind.little_endian => "power8",
        (header::EM_S390, true) => "z13",
        (header::EM_RISCV, true) => "riscv64",
        _ => return None,
    })
}

/// The Debian multiarch triplet for a machine, used when the interpreter's own directory
/// does not name one.
pub(crate) fn triplet(kind: ElfKind) -> Option<&'static str> {
    Some(match (kind.machine, kind.is_64, kind.little_endian) {
        (header::EM_X86_64, true, _) => "x86_64-linux-gnu",
        (header::EM_X86_64, false, _) => "x86_64-linux-gnux32",
        (header::EM_386, false, _) => "i386-linux-gnu",
        (header::EM_AARCH64, true, true) => "aarch64-linux-gnu",
        (header::EM_ARM, false, true) => "arm-linux-gnueabihf",
        (header::EM_PPC64, true, true) => "powerpc64le-linux-gnu",
        (header::EM_PPC64, true, false) => "powerpc64-linux-gnu",
        (header::EM_PPC, false, false) => "powerpc-linux-gnu",
        (header::EM_S390, true, false) => "s390x-linux-gnu",
        (header::EM_RISCV, true, true) => "riscv64-linux-gnu",
        (header::EM_MIPS, true, true) => "mips64el-linux-gnuabi64",
        (header::EM_MIPS, false, true) => "mipsel-linux-gnu",
        (header::EM_MIPS, false, false) => "mips-linux-gnu",
        (header::EM_LOONGARCH, true, true) => "loongarch64-linux-gnu",
        _ => return None,
    })
}
