//! Progress of a run on stderr.

use std::io::IsTerminal;
use std::sync::Mutex;

use super::CaseResult;

/// A progress bar on a terminal, one plain line per case otherwise.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    count: Mutex<usize>,
}

impl Progress {
    pub(super) fn new(total: usize, plain: bool) -> Progress {
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            total,
            count: Mutex::new(0),
        }
    }

    pub(super) fn done(&self, r: &CaseResult) {
        let n = self.count.lock().map(|mut c| {
            *c += 1;
            *c
        });
        let line = format!(
            "{:<10} {} × {} ({} ms){}",
            r.outcome.as_str(),
            r.checker,
            r.profile,
            r.millis,
            r.wrong_accept()
                .map(|w| format!("  {}", w.as_str().to_uppercase()))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(line);
            }
            None => eprintln!("[{:>4}/{}] {line}", n.unwrap_or(0), self.total),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
