//! One process per reader on this machine: a lock file per reader slot in the temp dir,
//! taken by whoever serves the slot (an `rclab serve`, a run, a test binary).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Endpoint;

/// [`super::VirtualReader::spawn_until`] gave up waiting for the reader's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// The lock file of a reader slot, shared by every rclab process on this machine.
fn lock_file(name: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(name))
}

/// Takes the reader's lock, waiting while another process holds it (until `cancel` is
/// set); `Ok(None)` when the lock file cannot be used at all (then nothing is protected,
/// but serving still works).
///
/// The wait polls instead of blocking in `flock`, so that a signal handler's flag ends it.
#[allow(clippy::type_complexity)]
pub(super) fn lock_reader(
    endpoint: &Endpoint,
    cancel: Option<&AtomicBool>,
) -> Result<Option<std::fs::File>, (Cancelled, Option<std::fs::File>)> {
    let Ok(file) = lock_file(&endpoint.lock_name()) else {
        return Ok(None);
    };
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !said {
                    eprintln!(
                        "[{}] another rclab process serves this reader ({endpoint}); waiting for it to let go",
                        endpoint.port()
                    );
                    said = true;
                }
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err((Cancelled, None));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(_)) => return Ok(None),
        }
    }
}

/// True when another process serves `port` of this machine's vpcd right now.
pub fn port_busy(port: u16) -> bool {
    lock_file(&Endpoint::local(port).lock_name())
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}
