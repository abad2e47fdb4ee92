//! Bounded reads of user-named files: profiles, `extends:` targets, images, keys,
//! certificates, trust folders, adapters, baselines and result journals.
//!
//! Why one module: every path a user (or a hostile profile) names can be a FIFO that never
//! sends EOF, a device such as `/dev/zero` that never ends, or a link to either. Opening a
//! FIFO for reading blocks until a writer appears, so the check must happen on a file opened
//! with `O_NONBLOCK`, and the type must be read from that open descriptor (`fstat`), not
//! from the path, or a swap between check and open defeats it. Every reader in rclab goes
//! through [`read_bounded`], so the rule is written once; every file rclab creates for a
//! user through [`create_regular`], by the same rule.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Largest file a profile reads (YAML, images, keys, certificates are all far smaller).
pub const MAX_PROFILE_FILE: u64 = 1 << 20;

/// What went wrong reading a user-named file; the message never quotes the file's content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed (missing, permission, I/O error).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A FIFO, device, socket or directory: refused before any byte is read.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// Larger than the caller's limit.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// Opens `path` without blocking (a FIFO opens at once), refuses anything that is not a
/// regular file, and returns the open file.
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(ReadError::NotRegular(kind_name(kind)))
}

/// What a file that is not a regular file is, for an error message.
pub fn kind_name(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Who may read a file rclab writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Anyone the umask lets (reports, fragments).
    Anyone,
    /// Its owner only (`0600`), and never through a link: a file holding personal data
    /// (`rclab record`) must land where it was named, not where a planted link points.
    OwnerOnly,
}

/// Creates or replaces the file a user named for output, by the same rule as the readers:
/// opened without blocking (a FIFO with no reader fails at once instead of hanging), its
/// type read from the open descriptor, anything but a regular file refused, and only then
/// emptied (a device is never truncated).
pub fn create_regular(path: &Path, readers: Readers) -> Result<File, ReadError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let (mode, flags) = match readers {
        Readers::Anyone => (0o666, libc::O_NONBLOCK),
        Readers::OwnerOnly => (0o600, libc::O_NONBLOCK | libc::O_NOFOLLOW),
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(mode)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // What a non-blocking open for writing answers for a FIFO nobody reads.
            Some(libc::ENXIO) => ReadError::NotRegular("a FIFO (or a device) with no reader"),
            _ => ReadError::Io(e),
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(kind_name(kind)));
    }
    file.set_len(0)?;
    if readers == Readers::OwnerOnly {
        // An existing file keeps its old mode through `open`: make it private too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads a regular file of at most `limit` bytes as UTF-8 text.
pub fn read_bounded_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::Io(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)] // SAFETY comments on each unsafe block below.
    fn a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_bounded(&fifo, 10).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("a FIFO")), "{err}");
        // Written to: fails at once (no reader: ENXIO), never blocks.
        assert!(matches!(
            create_regular(&fifo, Readers::Anyone),
            Err(ReadError::NotRegular(_))
        ));
    }

    #[test]
    fn outputs_replace_regular_files_only_and_private_ones_never_follow_links() {
        use std::os::unix::fs::PermissionsExt;
        assert!(matches!(
            create_regular(Path::new("/dev/null"), Readers::Anyone),
            Err(ReadError::NotRegular("a device"))
        ));
        assert!(matches!(
            create_regular(Path::new("/"), Readers::Anyone),
            Err(ReadError::Io(_))
        ));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let target = dir.join("target");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_regular(&link, Readers::OwnerOnly).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        let private = dir.join("private");
        std::fs::write(&private, b"an older, longer content").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut file = create_regular(&private, Readers::OwnerOnly).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&private).unwrap(), b"new");
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn devices_and_directories_are_refused_and_sizes_bounded() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a device"))
        ));
        assert!(matches!(
            read_bounded(Path::new("/"), 10),
            Err(ReadError::NotRegular("a directory"))
        ));
        let file = std::env::temp_dir().join(format!("rclab-files-big-{}", std::process::id()));
        std::fs::write(&file, [0u8; 11]).unwrap();
        assert!(matches!(
            read_bounded(&file, 10),
            Err(ReadError::TooLarge(10))
        ));
        assert_eq!(read_bounded(&file, 11).unwrap().len(), 11);
        std::fs::remove_file(&file).unwrap();
    }
}
