//! Running one external checker: its own process group, a hard timeout, and bounded output.
//!
//! Why a process group: a checker is often a shell script, and the program doing the work is
//! its child or grandchild. Killing only the direct child leaves the grandchild running and
//! holding the stdout/stderr pipes open, so a runner that waits for end-of-file waits as long
//! as the grandchild lives. Each checker therefore starts as the leader of a new group; the
//! whole group is killed on timeout and again as soon as the checker exits (a verdict printed
//! before `sleep 30 &` counts at once), and draining the pipes after that is bounded by
//! [`DRAIN_AFTER_EXIT`] (a grandchild that left the group cannot hold the run either).
//!
//! Why a tail: the verdict is the last line of stdout; keeping everything a checker prints
//! would let a chatty checker cost its whole output in memory. Only the last
//! [`STDOUT_TAIL`] bytes of stdout and [`STDERR_TAIL`] bytes of stderr are kept.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups of the checkers running now. They are not in the terminal's foreground
/// group, so Ctrl-C does not reach them: [`kill_running`] does, from rclab's signal handler.
static RUNNING: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

/// Kills every running checker's process group (on SIGINT/SIGTERM of the runner).
pub fn kill_running() {
    if let Ok(groups) = RUNNING.lock() {
        for &pgid in groups.iter() {
            // SAFETY: killpg only sends a signal to a group a checker of ours leads; its
            // leader is unreaped while it is listed, so the id cannot name another group.
            #[allow(unsafe_code)] // proven in the SAFETY comment above
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

/// Bytes of a checker's stdout kept: the end, where the verdict line is.
pub const STDOUT_TAIL: usize = 64 * 1024;
/// Bytes of a checker's stderr kept, for the detail of a crash.
pub const STDERR_TAIL: usize = 8 * 1024;
/// How often a checker whose output pipes are closed is looked at for its exit.
const PIPES_CLOSED_POLL: Duration = Duration::from_millis(1);

/// Longest wait for the pipes to close once the checker has exited or was killed.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// The last `limit` bytes of a stream, with the count of bytes seen.
#[derive(Debug)]
pub struct Tail {
    limit: usize,
    bytes: Vec<u8>,
    /// Bytes received in all, kept or not.
    pub total: u64,
}

impl Tail {
    /// A tail keeping the last `limit` bytes.
    pub fn new(limit: usize) -> Tail {
        Tail {
            limit,
            bytes: Vec::new(),
            total: 0,
        }
    }

    /// Appends `chunk`, dropping the oldest bytes past the limit. The buffer may hold up to
    /// twice the limit between compactions, so dropping costs amortised O(1) per byte.
    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let chunk = &chunk[chunk.len().saturating_sub(self.limit)..];
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > 2 * self.limit {
            let cut = self.bytes.len() - self.limit;
            self.bytes.drain(..cut);
        }
    }

    /// True when bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len().min(self.limit) as u64
    }

    /// The kept text, decoded lossily (an invalid byte becomes U+FFFD and spoils only its
    /// own line). When the start was dropped, the partial first line is dropped too.
    pub fn text(&self) -> String {
        let kept = &self.bytes[self.bytes.len().saturating_sub(self.limit)..];
        let kept = if self.truncated() {
            kept.iter()
                .position(|&b| b == b'\n')
                .map_or(&kept[kept.len()..], |i| &kept[i + 1..])
        } else {
            kept
        };
        String::from_utf8_lossy(kept).into_owned()
    }
}

/// How a checker process ended.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    /// The end of the checker's standard output.
    pub stdout: Tail,
    /// The end of its standard error.
    pub stderr: Tail,
    /// True when the pipes were still open [`DRAIN_AFTER_EXIT`] after the end (a
    /// descendant that escaped the process group holds them); what came until then is kept.
    pub pipes_left_open: bool,
}

/// Runs `argv` in `cwd` with `env` added, in a new process group, with stdin closed;
/// kills the group at `timeout`. Errors only when the program cannot be started.
pub fn run(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    timeout: Duration,
) -> io::Result<Finished> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut child = Command::new(program)
        .args(args)
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    if let Ok(mut groups) = RUNNING.lock() {
        groups.push(pgid);
    }
    let mut pipes = Pipes {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Tail::new(STDOUT_TAIL),
        err: Tail::new(STDERR_TAIL),
    };
    let deadline = Instant::now().checked_add(timeout);
    let mut timed_out = false;
    loop {
        if has_exited(&child) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            break;
        }
        // Read what is there, or wait at most 20 ms for more (then look at the child again).
        pipes.pump(Duration::from_millis(20));
    }
    // The group dies with its leader still a zombie: its id cannot have been reused.
    kill_group(&child);
    if let Ok(mut groups) = RUNNING.lock() {
        groups.retain(|&g| g != pgid);
    }
    let status = child.wait()?;
    let drain_deadline = Instant::now() + DRAIN_AFTER_EXIT;
    while pipes.open() && Instant::now() < drain_deadline {
        pipes.pump(Duration::from_millis(20));
    }
    let pipes_left_open = pipes.open();
    Ok(Finished {
        status: (!timed_out).then_some(status),
        stdout: pipes.out,
        stderr: pipes.err,
        pipes_left_open,
    })
}

/// True once the child has exited, without reaping it (`WNOWAIT`): the zombie keeps its
/// process id, and so its group id, reserved until [`kill_group`] ran.
fn has_exited(child: &Child) -> bool {
    let pid: libc::id_t = child.id();
    // SAFETY: `info` is a zeroed siginfo_t that waitid fills in; `pid` is our own unreaped
    // child, and WNOWAIT leaves it unreaped for `Child::wait`.
    #[allow(unsafe_code)] // proven in the SAFETY comment above
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // rc == -1: not our child any more (cannot happen); treat as exited.
        rc != 0 || info.si_pid() != 0
    }
}

/// SIGKILL to the checker's whole process group (its id is the checker's pid).
fn kill_group(child: &Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg only sends a signal; the group is the one the checker leads (the
        // leader is not reaped yet, so the id still names it). ESRCH is harmless.
        #[allow(unsafe_code)] // proven in the SAFETY comment above
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Both output pipes of a checker and the tails read from them.
struct Pipes {
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Tail,
    err: Tail,
}

impl Pipes {
    fn open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Waits up to `wait` for either pipe to be readable, then reads what is there once.
    fn pump(&mut self, wait: Duration) {
        let mut fds: Vec<libc::pollfd> = [
            self.stdout.as_ref().map(AsRawFd::as_raw_fd),
            self.stderr.as_ref().map(AsRawFd::as_raw_fd),
        ]
        .into_iter()
        .map(|fd| libc::pollfd {
            fd: fd.unwrap_or(-1), // poll ignores negative descriptors
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
        if !self.open() {
            // Both pipes at end-of-file: the checker is exiting (or closed them and runs
            // on). Look again within a millisecond rather than `wait`: with 20 ms this
            // sleep was most of a fast case's overhead.
            std::thread::sleep(wait.min(PIPES_CLOSED_POLL));
            return;
        }
        let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a live Vec of two initialised pollfd structs, and its length is
        // passed with it.
        #[allow(unsafe_code)] // proven in the SAFETY comment above
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready <= 0 {
            return;
        }
        if fds[0].revents != 0 {
            read_once(&mut self.stdout, &mut self.out);
        }
        if fds[1].revents != 0 {
            read_once(&mut self.stderr, &mut self.err);
        }
    }
}

/// One read from a ready pipe into `tail`; closes the pipe at end-of-file or on error.
fn read_once<R: Read>(pipe: &mut Option<R>, tail: &mut Tail) {
    let Some(reader) = pipe else {
        return;
    };
    let mut buffer = [0u8; 16 * 1024];
    match reader.read(&mut buffer) {
        Ok(0) => *pipe = None,
        Ok(n) => tail.push(&buffer[..n]),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => *pipe = None,
    }
}

/// The last non-blank line of `text`, at most 200 characters, with control characters
/// (terminal escapes) shown as `\u{..}` so that they reach no report or terminal raw.
pub fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    super::printable(line, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_end_and_drops_a_partial_first_line() {
        let mut tail = Tail::new(8);
        tail.push(b"0123456789\nabc");
        tail.push(b"\nxy");
        assert_eq!(tail.total, 17);
        assert!(tail.truncated());
        // The last 8 bytes are "9\nabc\nxy"; the partial line "9" goes.
        assert_eq!(tail.text(), "abc\nxy");
        let mut whole = Tail::new(64);
        whole.push(b"one\ntwo");
        assert_eq!(whole.text(), "one\ntwo");
    }

    #[test]
    fn the_tail_stays_bounded_whatever_the_input() {
        let mut tail = Tail::new(1024);
        for _ in 0..10_000 {
            tail.push(&[b'x'; 333]);
        }
        assert!(tail.bytes.len() <= 2 * 1024);
        assert_eq!(tail.total, 3_330_000);
    }

    #[test]
    fn invalid_utf8_spoils_only_its_own_line() {
        let mut tail = Tail::new(1024);
        tail.push(b"bad \xff byte\n{\"ok\":1}\n");
        assert_eq!(tail.text().lines().last(), Some("{\"ok\":1}"));
    }

    #[test]
    fn last_lines_show_control_characters_escaped() {
        assert_eq!(
            last_line("a\n\x1b[31mred\x1b[0m\n\n"),
            "\\u{1b}[31mred\\u{1b}[0m"
        );
    }
}
