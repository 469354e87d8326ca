//! A writer of minimal ELF files for fake host roots: a header, one PT_LOAD covering the whole
//! file (so addresses equal file offsets), an optional PT_INTERP and a PT_DYNAMIC with the
//! tags the closure reads. Any class, byte order and machine.

pub(super) const EM_X86_64: u16 = 62;
pub(super) const EM_386: u16 = 3;
pub(super) const EM_MIPS: u16 = 8;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

#[derive(Debug, Clone)]
pub(super) struct FakeElf {
    pub(super) is_64: bool,
    pub(super) big_endian: bool,
    pub(super) machine: u16,
    pub(super) interpreter: Option<String>,
    pub(super) soname: Option<String>,
    pub(super) needed: Vec<String>,
    pub(super) runpath: Option<String>,
    pub(super) rpath: Option<String>,
}

impl FakeElf {
    /// A 64-bit little-endian x86-64 object with nothing dynamic yet.
    pub(super) fn x86_64() -> Self {
        Self::new(true, false, EM_X86_64)
    }

    pub(super) fn new(is_64: bool, big_endian: bool, machine: u16) -> Self {
        FakeElf {
            is_64,
            big_endian,
            machine,
            interpreter: None,
            soname: None,
            needed: Vec::new(),
            runpath: None,
            rpath: None,
        }
    }

    pub(super) fn interp(mut self, path: &str) -> Self {
        self.interpreter = Some(path.into());
        self
    }

    pub(super) fn soname(mut self, name: &str) -> Self {
        self.soname = Some(name.into());
        self
    }

    pub(super) fn needs(mut self, name: &str) -> Self {
        self.needed.push(name.into());
        self
    }

    pub(super) fn runpath(mut self, list: &str) -> Self {
        self.runpath = Some(list.into());
        self
    }

    pub(super) fn rpath(mut self, list: &str) -> Self {
        self.rpath = Some(list.into());
        self
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        let word = if self.is_64 { 8 } else { 4 };
        let ehsize = if self.is_64 { 64 } else { 52 };
        let phentsize = if self.is_64 { 56 } else { 32 };
        let phnum = if self.interpreter.is_some() { 3 } else { 2 };

        // The string table and the dynamic entries that point into it.
        let mut strtab = vec![0u8];
        let mut add_string = |s: &str| {
            let offset = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            offset
        };
        let mut dyns: Vec<(u64, u64)> = Vec::new();
        for name in &self.needed {
            dyns.push((DT_NEEDED, add_string(name)));
        }
        if let Some(soname) = &self.soname {
            dyns.push((DT_SONAME, add_string(soname)));
        }
        if let Some(list) = &self.runpath {
            dyns.push((DT_RUNPATH, add_string(list)));
        }
        if let Some(list) = &self.rpath {
            dyns.push((DT_RPATH, add_string(list)));
        }

        let interp_offset = ehsize + phentsize * phnum;
        let interp_len = self.interpreter.as_ref().map_or(0, |i| i.len() + 1);
        let strtab_offset = interp_offset + interp_len;
        let dynamic_offset = (strtab_offset + strtab.len()).next_multiple_of(word);
        dyns.push((DT_STRTAB, strtab_offset as u64));
        dyns.push((DT_STRSZ, strtab.len() as u64));
        dyns.push((DT_NULL, 0));
        let dynamic_len = dyns.len() * 2 * word;
        let total = dynamic_offset + dynamic_len;

        let mut w = Writer {
            out: Vec::new(),
            big: self.big_endian,
            is_64: self.is_64,
        };
        // e_ident
        w.out.extend_from_slice(b"\x7fELF");
        w.out.push(if self.is_64 { 2 } else { 1 });
        w.out.push(if self.big_endian { 2 } else { 1 });
        w.out.push(1); // EV_CURRENT
        w.out.resize(16, 0);
        w.u16(3); // ET_DYN
        w.u16(self.machine);
        w.u32(1);
        w.word(0); // e_entry
        w.word(ehsize as u64); // e_phoff
        w.word(0); // e_shoff
        w.u32(0); // e_flags
        w.u16(ehsize as u16);
        w.u16(phentsize as u16);
        w.u16(phnum as u16);
        w.u16(0); // e_shentsize
        w.u16(0); // e_shnum
        w.u16(0); // e_shstrndx
        assert_eq!(w.out.len(), ehsize);

        w.phdr(PT_LOAD, 0, total as u64);
        if self.interpreter.is_some() {
            w.phdr(PT_INTERP, interp_offset as u64, interp_len as u64);
        }
        w.phdr(PT_DYNAMIC, dynamic_offset as u64, dynamic_len as u64);
        assert_eq!(w.out.len(), interp_offset);

        if let Some(interp) = &self.interpreter {
            w.out.extend_from_slice(interp.as_bytes());
            w.out.push(0);
        }
        w.out.extend_from_slice(&strtab);
        w.out.resize(dynamic_offset, 0);
        for (tag, value) in dyns {
            w.word(tag);
            w.word(value);
        }
        assert_eq!(w.out.len(), total);
        w.out
    }
}

struct Writer {
    out: Vec<u8>,
    big: bool,
    is_64: bool,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn u64(&mut self, v: u64) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&b);
    }

    fn word(&mut self, v: u64) {
        if self.is_64 {
            self.u64(v);
        } else {
            self.u32(u32::try_from(v).expect("fits a 32-bit word"));
        }
    }

    /// A program header whose file range is also its address range.
    fn phdr(&mut self, kind: u32, offset: u64, size: u64) {
        if self.is_64 {
            self.u32(kind);
            self.u32(4); // PF_R
            self.u64(offset);
            self.u64(offset);
            self.u64(offset);
            self.u64(size);
            self.u64(size);
            self.u64(8);
        } else {
            self.u32(kind);
            self.word(offset);
            self.word(offset);
            self.word(offset);
            self.word(size);
            self.word(size);
            self.u32(4);
            self.u32(4);
        }
    }
}
