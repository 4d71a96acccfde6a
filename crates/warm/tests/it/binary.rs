//! The shipped binary itself: one static, position-dependent executable (.cargo/config.toml),
//! which runs with no dynamic loader or shared library on the machine and pays for neither on
//! every one-shot call (docs/benchmarks.md, "Where a one-shot call goes").

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;

/// The ELF file type and the type of every program header of a 64-bit little-endian ELF file.
fn elf_type_and_segments(path: &str) -> (u16, Vec<u32>) {
    let mut file = File::open(path).expect("open the warm binary");
    let mut header = [0u8; 64];
    file.read_exact(&mut header).expect("ELF header");
    assert_eq!(&header[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(header[4], 2, "not a 64-bit ELF file");
    assert_eq!(header[5], 1, "not little-endian");
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let file_type = u16_at(0x10);
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().expect("8 bytes"));
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let mut segments = Vec::new();
    for index in 0..u64::from(phnum) {
        file.seek(SeekFrom::Start(phoff + index * u64::from(phentsize)))
            .expect("seek to a program header");
        let mut p_type = [0u8; 4];
        file.read_exact(&mut p_type).expect("program header");
        segments.push(u32::from_le_bytes(p_type));
    }
    (file_type, segments)
}

#[test]
fn the_binary_is_static_and_position_dependent() {
    let (file_type, segments) = elf_type_and_segments(env!("CARGO_BIN_EXE_warm"));
    assert!(!segments.is_empty(), "no program headers read");
    assert!(
        !segments.contains(&PT_INTERP),
        "warm asks for a dynamic loader: is .cargo/config.toml's crt-static gone?"
    );
    assert!(
        !segments.contains(&PT_DYNAMIC),
        "warm has a dynamic section (shared libraries or self-relocation at start)"
    );
    assert_eq!(
        file_type, ET_EXEC,
        "warm is position-independent: it relocates itself at every start"
    );
}
