//! `rclab serve`: profiles as cards in vpcd readers, with insert/remove on command.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::vpcd::{BASE_PORT, ReaderOptions, VirtualReader};

use crate::ServeArgs;

struct Served {
    reader: VirtualReader,
    profile: Profile,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
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
        let port = args.ports.get(i).copied().unwrap_or(BASE_PORT + i as u16);
        let mut options = ReaderOptions::new(port);
        options.atr = atr.clone();
        options.trace = args.trace;
        let reader = VirtualReader::spawn(options, Some(Box::new(profile.card())));
        println!(
            "serving {} (card number {}) in {:?} on port {port}",
            profile.path.display(),
            profile.card_number,
            reader.name()
        );
        served.push(Served { reader, profile });
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
    while !stop.load(Ordering::Relaxed) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        match command(&line, &mut served) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => eprintln!("rclab serve: {e:#}"),
        }
    }
    for s in served {
        s.reader.stop();
    }
    println!("stopped");
    Ok(ExitCode::SUCCESS)
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
                    "{} {:?} {}",
                    s.reader.port(),
                    s.reader.name(),
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
                "inserted {} into port {port}",
                served[i].profile.path.display()
            );
        }
        _ => bail!("unknown command {line:?}"),
    }
    Ok(false)
}
