//! Files the index must never read: FIFOs, sockets and device files (a read blocks or never
//! ends), and the kernel's pseudo file systems (`/proc`, `/sys`, ...: files that report size 0
//! and block, such as `/proc/kmsg`, or that are not the user's code at all).
//!
//! A file is opened without blocking and read only if it is a regular file at the moment it
//! is open (it may have been replaced by a FIFO since the walk saw it); directories that are
//! mount points of pseudo file systems are never entered.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File system types whose files are the kernel's, not anybody's source.
const PSEUDO_FILE_SYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "debugfs",
    "tracefs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "efivarfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "rpc_pipefs",
    "nsfs",
];

/// File systems whose changes inotify does not report, or not all of them: network file
/// systems (a change made on another machine never reaches this kernel's watches) and FUSE
/// (sshfs, bindfs, ...: the data may change behind the mount). `statfs` magic numbers.
const UNWATCHABLE_FILE_SYSTEMS: &[(u32, &str)] = &[
    (0x6969, "nfs"),
    (0x517B, "smb"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x0102_1997, "9p"),
    (0x6573_5546, "fuse"),
    (0x00C3_6400, "ceph"),
    (0x5346_414F, "afs"),
    (0x7375_7245, "coda"),
    (0x0BD0_0BD0, "lustre"),
    (0x4750_4653, "gpfs"),
];

/// The name of `dir`'s file system when inotify cannot be trusted to report its changes.
pub fn unwatchable_file_system(dir: &Path) -> Option<&'static str> {
    let stat = rustix::fs::statfs(dir).ok()?;
    // The magic numbers are 32-bit; the field is wider on some targets.
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as u32;
    name_of_unwatchable(magic)
}

fn name_of_unwatchable(magic: u32) -> Option<&'static str> {
    UNWATCHABLE_FILE_SYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Opens `path` for reading if it is a regular file (`Ok(None)` if it is anything else),
/// without ever blocking in `open` (a FIFO with no writer would block there forever).
///
/// # Errors
/// The error of `open` (the file is gone, or not readable).
pub fn open_regular(path: &Path) -> std::io::Result<Option<File>> {
    let nonblocking = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking)
        .open(path)?;
    // Checked on the open file, not the path: nothing can swap it in between.
    Ok(file.metadata()?.is_file().then_some(file))
}

/// Mount points of pseudo file systems, read once from `/proc/self/mountinfo`.
pub fn pseudo_mounts() -> &'static [PathBuf] {
    static MOUNTS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    MOUNTS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|text| parse_mountinfo(&text))
            .unwrap_or_else(|_| ["/proc", "/sys", "/dev"].map(PathBuf::from).to_vec())
    })
}

/// True for a directory the walk must not enter.
pub fn is_pseudo_mount(dir: &Path) -> bool {
    pseudo_mounts().iter().any(|m| m == dir)
}

/// The mount points (field 5) of the lines whose file system type (after ` - `) is a
/// pseudo file system. Spaces and other bytes in mount points are octal escapes (`\040`).
fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let (mount, rest) = line.split_once(" - ")?;
            let fs_type = rest.split(' ').next()?;
            let mount_point = mount.split(' ').nth(4)?;
            PSEUDO_FILE_SYSTEMS
                .contains(&fs_type)
                .then(|| PathBuf::from(unescape(mount_point)))
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_file_systems_are_found_in_mountinfo() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw - sysfs sysfs rw
24 1 8:1 / / rw - ext4 /dev/sda1 rw
25 24 0:5 / /my\\040dir/dev rw - devtmpfs udev rw
";
        assert_eq!(
            parse_mountinfo(text),
            ["/proc", "/sys", "/my dir/dev"].map(PathBuf::from).to_vec()
        );
        assert!(is_pseudo_mount(Path::new("/proc")), "this machine's /proc");
    }

    #[test]
    fn network_and_fuse_file_systems_are_named_and_local_ones_are_not() {
        assert_eq!(name_of_unwatchable(0x6969), Some("nfs"));
        assert_eq!(name_of_unwatchable(0xFF53_4D42), Some("cifs"));
        assert_eq!(name_of_unwatchable(0x6573_5546), Some("fuse"));
        assert_eq!(name_of_unwatchable(0xEF53), None, "ext4");
        assert_eq!(name_of_unwatchable(0x0102_1994), None, "tmpfs");
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            unwatchable_file_system(tmp.path()),
            None,
            "this machine's /tmp"
        );
    }

    #[test]
    fn a_fifo_is_never_opened_for_reading() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fifo = tmp.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        // Would block forever without O_NONBLOCK: nobody writes to it.
        assert!(open_regular(&fifo).expect("opens").is_none());
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(open_regular(&file).expect("opens").is_some());
    }
}
