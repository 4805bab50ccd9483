//! Renders a [`TestFirmware`] as a 32-bit little-endian ELF executable shaped like an
//! esp-hal build: one `PT_LOAD` program header per allocated section, `.flash.appdesc`
//! holding the app descriptor (the section espflash looks for), `.rodata` starting with
//! the trusted-key descriptor, a symbol table (`esp_app_desc`, `OTA_TRUSTED_KEYS`,
//! `_start`), and the non-allocated `.espressif.metadata` section whose
//! `build_info.CHIP_NAME` symbol names the chip.

use object::Endianness;
use object::elf;
use object::write::StringId;
use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, SectionIndex, Sym, Writer};

use crate::firmware::{TestFirmware, TestSection};

const METADATA_SECTION: &str = ".espressif.metadata";
const CHIP_NAME_SYMBOL: &str = "build_info.CHIP_NAME";

struct Placed<'a> {
    section: &'a TestSection,
    name: StringId,
    index: SectionIndex,
    offset: u64,
}

struct Symbol {
    name: StringId,
    section: SectionIndex,
    value: u64,
    size: u64,
    func: bool,
}

pub(crate) fn write(fw: &TestFirmware) -> Vec<u8> {
    let layout = fw.chip().layout();
    let mut sections = fw.sections();
    if fw.has_build_metadata() {
        sections.push(TestSection {
            name: METADATA_SECTION,
            addr: 0,
            data: fw.chip().name().as_bytes().to_vec(),
            exec: false,
            write: false,
        });
    }
    let loadable = sections.iter().filter(|s| s.addr != 0).count() as u32;

    let mut out = Vec::new();
    let mut w = Writer::new(Endianness::Little, false, &mut out);
    w.reserve_file_header();
    w.reserve_program_headers(loadable);
    w.reserve_null_section_index();
    let mut placed: Vec<Placed<'_>> = sections
        .iter()
        .map(|section| Placed {
            section,
            name: w.add_section_name(section.name.as_bytes()),
            index: w.reserve_section_index(),
            offset: 0,
        })
        .collect();
    for p in &mut placed {
        p.offset = w.reserve(p.section.data.len() as u64, 16);
    }

    let find = |name: &str| placed.iter().find(|p| p.section.name == name);
    let mut symbols = Vec::new();
    let mut symbol =
        |w: &mut Writer<'_>, name: &'static str, p: Option<&Placed<'_>>, size, func| {
            if let Some(p) = p {
                symbols.push(Symbol {
                    name: w.add_string(name.as_bytes()),
                    section: p.index,
                    value: if p.section.addr == 0 {
                        0
                    } else {
                        u64::from(p.section.addr)
                    },
                    size,
                    func,
                });
            }
        };
    symbol(&mut w, "esp_app_desc", find(".flash.appdesc"), 256, false);
    if fw.key_descriptor().is_some() {
        let len = ota_format::DESCRIPTOR_LEN as u64;
        symbol(&mut w, "OTA_TRUSTED_KEYS", find(".rodata"), len, false);
    }
    symbol(&mut w, "_start", find(".text"), 4, true);
    let chip_name_len = fw.chip().name().len() as u64;
    symbol(
        &mut w,
        CHIP_NAME_SYMBOL,
        find(METADATA_SECTION),
        chip_name_len,
        false,
    );
    w.reserve_null_symbol_index();
    for s in &symbols {
        w.reserve_symbol_index(Some(s.section));
    }
    w.reserve_symtab_section_index();
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();
    w.reserve_symtab();
    w.reserve_strtab().expect("string table fits");
    w.reserve_shstrtab().expect("section names fit");
    w.reserve_section_headers();

    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_EXEC,
        e_machine: elf::Machine(layout.e_machine),
        e_entry: u64::from(fw.entry()),
        e_flags: elf::FileFlags(layout.e_flags),
    })
    .expect("ELF header encodes");
    w.write_align_program_headers();
    for p in placed.iter().filter(|p| p.section.addr != 0) {
        let s = p.section;
        let mut flags = elf::PF_R;
        if s.exec {
            flags |= elf::PF_X;
        }
        if s.write {
            flags |= elf::PF_W;
        }
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: flags,
            p_offset: p.offset,
            p_vaddr: u64::from(s.addr),
            p_paddr: u64::from(s.addr),
            p_filesz: s.data.len() as u64,
            p_memsz: s.data.len() as u64,
            p_align: 16,
        });
    }
    for p in &placed {
        w.write_align(16);
        w.write(&p.section.data);
    }
    w.write_null_symbol();
    for s in &symbols {
        let kind = if s.func {
            elf::STT_FUNC
        } else {
            elf::STT_OBJECT
        };
        w.write_symbol(&Sym {
            section: Some(s.section.0),
            st_name: w.string_offset(Some(s.name)),
            st_info: elf::SymbolInfo::new(elf::STB_GLOBAL, kind),
            st_other: elf::SymbolOther(0),
            st_shndx: elf::SymbolSection(0),
            st_value: s.value,
            st_size: s.size,
        });
    }
    w.write_strtab();
    w.write_shstrtab();
    w.write_null_section_header();
    for p in &placed {
        let s = p.section;
        let mut flags = elf::SectionFlags(0);
        if s.addr != 0 {
            flags |= elf::SHF_ALLOC;
        }
        if s.exec {
            flags |= elf::SHF_EXECINSTR;
        }
        if s.write {
            flags |= elf::SHF_WRITE;
        }
        w.write_section_header(&SectionHeader {
            sh_name: w.section_name_offset(Some(p.name)),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: flags,
            sh_addr: u64::from(s.addr),
            sh_offset: p.offset,
            sh_size: s.data.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 16,
            sh_entsize: 0,
        });
    }
    w.write_symtab_section_header(1);
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    drop(w);
    out
}
