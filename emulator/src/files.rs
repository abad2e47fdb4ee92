//! Bounded reads of user-named files: profiles, `extends:` targets, images, keys,
//! certificates, trust folders, adapters, baselines and result journals.
//!
//! Why one module: every path a user (or a hostile profile) names can be a FIFO that never
//! sends EOF, a device such as `/dev/zero` that never ends, or a link to either. Opening a
//! FIFO for reading blocks until a writer appears, so the check must happen on a file opened
//! with `O_NONBLOCK`, and the type must be read from that open descriptor (`fstat`), not
//! from the path, or a swap between check and open defeats it. Every reader in rclab goes
//! through [`read_bounded`], so the rule is written once.

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
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular(what))
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
        let dir = std::env::temp_dir().join(format!("rclab-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_bounded(&fifo, 10).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("a FIFO")), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
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
