//! `rclab serve`: profiles as cards in vpcd readers, with insert/remove on command.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::vpcd::{BASE_PORT, Endpoint, ReaderOptions, VirtualReader};

use clap::Args;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Profiles to serve, one reader each.
    #[arg(required = true, value_name = "PROFILE")]
    pub(crate) profiles: Vec<PathBuf>,
    /// vpcd port of each profile's reader, in order (default: 35963, 35964, …).
    #[arg(long = "reader-port", value_name = "PORT")]
    pub(crate) ports: Vec<u16>,
    /// Readers of a vpcd that listens on HOST (another machine, e.g. the Windows PC of the
    /// checker): one per port, PORT defaulting to 35963; repeat for more. No authentication
    /// or encryption: a trusted network or an SSH tunnel only.
    #[arg(long = "vpcd", value_name = "HOST[:PORT[-LAST]]", value_parser = rclab_suite::readers::parse_vpcd, conflicts_with = "ports")]
    pub(crate) vpcd: Vec<rclab_suite::readers::EndpointList>,
    /// Reversed mode: listen at ADDR:PORT (one reader per port) for a vpcd whose reader.conf
    /// says DEVICENAME ADDR:PORT; repeat for more.
    #[arg(long = "listen", value_name = "ADDR:PORT[-LAST]", value_parser = rclab_suite::readers::parse_listen, conflicts_with = "ports")]
    pub(crate) listen: Vec<rclab_suite::readers::EndpointList>,
    /// Exit with status 1 when a reader has had no vpcd connection after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
    pub(crate) wait: Option<Duration>,
    /// Log every APDU (`>>>` command, `<<<` response) and power event to stderr.
    #[arg(long)]
    pub(crate) trace: bool,
    /// ATR to present, hex (default: an ISO 14443-B card behind a PC/SC reader).
    #[arg(long, value_name = "HEX")]
    pub(crate) atr: Option<String>,
}

struct Served {
    reader: VirtualReader,
    profile: Profile,
}

/// Longest `--wait`: a year (anything longer is a typo, and must not overflow).
const MAX_WAIT_SECONDS: f64 = 365.0 * 86_400.0;

/// clap parser of `--wait SECONDS`: a finite number from 0 to a year.
pub(crate) fn parse_wait(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(&s) => {
            Ok(Duration::from_secs_f64(s))
        }
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0 to {MAX_WAIT_SECONDS}"
        )),
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    // Flags first: a duplicate reader would deadlock on its own lock.
    rclab_suite::readers::check_distinct_ports(&args.ports).map_err(anyhow::Error::msg)?;
    let endpoints =
        rclab_suite::readers::collect(&args.vpcd, &args.listen).map_err(anyhow::Error::msg)?;
    let profiles = args
        .profiles
        .iter()
        .map(|p| profile::load(p).map_err(anyhow::Error::new))
        .collect::<Result<Vec<_>>>()?;
    if !args.ports.is_empty() && args.ports.len() != profiles.len() {
        bail!(
            "{} profile(s) but {} --reader-port value(s)",
            profiles.len(),
            args.ports.len()
        );
    }
    if !endpoints.is_empty() && endpoints.len() != profiles.len() {
        bail!(
            "{} profile(s) but {} reader(s) named by --vpcd/--listen",
            profiles.len(),
            endpoints.len()
        );
    }
    let atr = match &args.atr {
        Some(text) => hex::decode(text.replace(' ', "")).context("--atr is not hex")?,
        None => rclab_emulator::transport::vpcd::DEFAULT_ATR.to_vec(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handler")?;
    }
    let mut served: Vec<Served> = Vec::new();
    for (i, profile) in profiles.into_iter().enumerate() {
        let endpoint = match (endpoints.get(i), args.ports.get(i)) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(port)) => Endpoint::local(*port),
            (None, None) => Endpoint::local(BASE_PORT + i as u16),
        };
        let mut options = ReaderOptions::at(endpoint.clone());
        options.atr = atr.clone();
        options.trace = args.trace;
        let Ok(reader) = VirtualReader::spawn_until(options, Some(Box::new(profile.card())), &stop)
        else {
            // A signal while waiting for another process to free the reader.
            break;
        };
        let what = served_card(&profile);
        println!(
            "serving {} ({what}) in {:?} via {endpoint}",
            profile.path.display(),
            reader.name()
        );
        served.push(Served { reader, profile });
    }
    if stop.load(Ordering::Relaxed) {
        return Ok(stop_all(served, ExitCode::SUCCESS));
    }
    println!(
        "commands: remove PORT | insert PORT [PROFILE] | list | quit; stop with Ctrl-C or SIGTERM (pid {})",
        std::process::id()
    );

    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut deadline = args.wait.map(|w| Instant::now() + w);
    while !stop.load(Ordering::Relaxed) {
        if let Some(at) = deadline {
            let waiting: Vec<&Served> = served
                .iter()
                .filter(|s| !s.reader.wait_attached(Duration::ZERO))
                .collect();
            if waiting.is_empty() {
                deadline = None;
            } else if Instant::now() >= at {
                for s in &waiting {
                    eprintln!(
                        "rclab serve: no vpcd connection for {} within --wait {:?}",
                        s.reader.endpoint(),
                        args.wait.unwrap_or_default()
                    );
                }
                return Ok(stop_all(served, ExitCode::FAILURE));
            }
        }
        let line = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            // Standard input is closed (`</dev/null`): serve on until a signal.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match command(&line, &mut served) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => eprintln!("rclab serve: {e:#}"),
        }
    }
    Ok(stop_all(served, ExitCode::SUCCESS))
}

fn stop_all(served: Vec<Served>, code: ExitCode) -> ExitCode {
    for s in served {
        s.reader.stop();
    }
    println!("stopped");
    code
}

/// Runs one stdin command; `Ok(true)` means quit.
fn command(line: &str, served: &mut [Served]) -> Result<bool> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let find = |port: &str| -> Result<usize> {
        let port: u16 = port
            .parse()
            .with_context(|| format!("{port:?} is not a port"))?;
        served
            .iter()
            .position(|s| s.reader.port() == port)
            .with_context(|| format!("no reader on port {port}"))
    };
    match words.as_slice() {
        [] => {}
        ["quit" | "exit"] => return Ok(true),
        ["list"] => {
            for s in served.iter() {
                println!(
                    "{} {:?} {} {}",
                    s.reader.port(),
                    s.reader.name(),
                    s.reader.endpoint(),
                    s.profile.path.display()
                );
            }
        }
        ["remove", port] => {
            let i = find(port)?;
            served[i].reader.remove();
            println!("removed card from port {port}");
        }
        ["insert", port, rest @ ..] => {
            let i = find(port)?;
            if let [path] = rest {
                served[i].profile = profile::load(&PathBuf::from(path))?;
            }
            served[i].reader.insert(Box::new(served[i].profile.card()));
            println!(
                "inserted {} ({}) into port {port}",
                served[i].profile.path.display(),
                served_card(&served[i].profile)
            );
        }
        _ => bail!("unknown command {line:?}"),
    }
    Ok(false)
}

/// What `rclab serve` says of a served card: its kind and what `rclab check --reader`
/// needs to read it, as `--card auto` tells the kinds apart: a residence card and a
/// specified one (its 在留AP) the card number, a My Number card the PIN.
fn served_card(profile: &Profile) -> String {
    use rclab_emulator::chip::ChipKind;
    match profile.kind() {
        ChipKind::Residence => format!("card number {}", profile.card_number),
        ChipKind::SpecifiedResidence => format!(
            "specified residence card, read as a residence card: card number {}",
            profile.card_number
        ),
        ChipKind::MyNumber => match rclab_suite::checker::my_number::profile_pin(profile) {
            Some(pin) => format!("My Number card: PIN {pin}"),
            None => "My Number card".to_owned(),
        },
    }
}
