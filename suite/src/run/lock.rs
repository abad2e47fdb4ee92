//! One run per output folder: an exclusive lock on `OUT/.rclab-run.lock`.
//!
//! Why: two runs appending to the same `results.jsonl` interleave lines and lose or
//! duplicate cases, and two `--resume` runs both run the missing cases. The lock is an
//! advisory `flock` (released by the kernel when the holder dies, so a killed run never
//! leaves a stale lock); the file holds the holder's pid and command line so that the
//! second run can say who has the folder.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the output folder.
pub const LOCK_FILE: &str = ".rclab-run.lock";

/// Held for as long as the run (and its reports) write into the folder.
#[derive(Debug)]
pub struct OutLock {
    _file: File,
    dir: PathBuf,
}

impl OutLock {
    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates `dir` if needed and locks it, or says which process holds it.
pub fn lock_out(dir: &Path) -> anyhow::Result<OutLock> {
    use anyhow::Context;
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--out {}: exists and is not a folder (results and reports are written into a folder)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the output folder", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("--out {}: cannot open the lock file", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ignored_unreadable_holder = (&file).take(4096).read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_owned()
            } else {
                super::printable(holder, 300)
            };
            anyhow::bail!(
                "--out {}: the folder is in use by another rclab run ({holder}); wait for it to finish or choose another --out",
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "--out {}: cannot lock {}",
                dir.display(),
                path.display()
            )));
        }
    }
    let command: Vec<String> = std::env::args().collect();
    let holder = format!("pid {}: {}\n", std::process::id(), command.join(" "));
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .with_context(|| format!("--out {}: cannot write the lock file", path.display()))?;
    Ok(OutLock {
        _file: file,
        dir: dir.to_owned(),
    })
}
