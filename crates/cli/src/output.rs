//! The only code that prints. Human-readable progress goes to stderr (plain timestamped lines
//! when stderr is not a terminal, as in CI); machine-readable output goes to stdout alone.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module is the one place that prints"
)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::failure::Failure;

/// Where and how the CLI talks to its user.
pub(crate) struct Output {
    verbose: bool,
    terminal: bool,
    bars: MultiProgress,
    stdout: Mutex<()>,
}

impl Output {
    pub(crate) fn new(verbose: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        // The libraries report retries and waits through `tracing`: warnings always, details
        // with --verbose, on stderr like every other human-readable line.
        // Only our libraries' events: dependencies (HTTP, TLS) are noise here.
        let max_level = if verbose {
            tracing::Level::DEBUG
        } else {
            tracing::Level::WARN
        };
        let filter = tracing_subscriber::filter::filter_fn(move |metadata| {
            metadata.target().starts_with("dagster_deploy") && *metadata.level() <= max_level
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_ansi(terminal)
            .with_filter(filter);
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Output {
            verbose,
            terminal,
            bars: MultiProgress::with_draw_target(target),
            stdout: Mutex::new(()),
        }
    }

    pub(crate) fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// A progress line for humans.
    pub(crate) fn info(&self, message: impl AsRef<str>) {
        self.line(message.as_ref());
    }

    /// A line shown only with `--verbose`.
    pub(crate) fn detail(&self, message: impl AsRef<str>) {
        if self.verbose {
            self.line(message.as_ref());
        }
    }

    pub(crate) fn warn(&self, message: impl AsRef<str>) {
        self.line(&format!("warning: {}", message.as_ref()));
    }

    pub(crate) fn failure(&self, failure: &Failure) {
        self.line(&failure.render());
    }

    /// Machine-readable output, exactly as given: the only thing written to stdout.
    pub(crate) fn stdout(&self, text: &str) {
        let _guard = self.stdout.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// One line of machine-readable output.
    pub(crate) fn stdout_line(&self, line: &str) {
        self.stdout(&format!("{line}\n"));
    }

    fn line(&self, message: &str) {
        if self.terminal {
            let _ = self.bars.println(message);
        } else {
            let now = jiff::Zoned::now();
            for line in message.lines() {
                eprintln!("[{}] {line}", now.strftime("%H:%M:%S"));
            }
        }
    }

    /// Makes byte-count progress bars (hidden when stderr is not a terminal); the factory can
    /// move into callbacks that run on other threads.
    pub(crate) fn bar_factory(&self) -> impl Fn(&str, u64) -> ProgressBar + Send + Sync + 'static {
        let bars = self.bars.clone();
        move |label: &str, total: u64| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.to_owned());
            bar
        }
    }

    /// A spinner with a status message (hidden when stderr is not a terminal).
    pub(crate) fn spinner(&self, label: &str) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>20} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
