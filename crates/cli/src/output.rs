//! The only code that prints. Human-readable progress goes to stderr (plain timestamped lines
//! when stderr is not a terminal, as in CI); machine-readable output goes to stdout alone.
//!
//! Much of what is printed comes from elsewhere: location names and logs from state files that
//! other CI jobs wrote (`state merge`), load errors and names from Dagster+, registry answers.
//! So everything passes through one filter here, [`terminal_safe`] (or [`json_safe`] for JSON),
//! which shows control characters and invisible formatting characters as `\u{..}` instead of
//! letting the terminal execute them: an ANSI escape sequence prints as text, a carriage return
//! cannot overwrite a line. Line breaks and tabs stay.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module is the one place that prints"
)]

use std::borrow::Cow;
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
        // Library events can quote what a server answered: they pass the same filter, and so
        // carry no colours of their own.
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(SafeStderr::default)
            .with_target(false)
            .without_time()
            .with_ansi(false)
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

    /// Output for stdout (tables, lists, markdown, names, digests): the only thing written
    /// there, made [`terminal_safe`].
    pub(crate) fn stdout(&self, text: &str) {
        self.write_stdout(&terminal_safe(text));
    }

    /// JSON for stdout, made [`json_safe`]: the same JSON value, with characters that a
    /// terminal would act on written as `\u` escapes.
    pub(crate) fn stdout_json(&self, text: &str) {
        self.write_stdout(&json_safe(text));
    }

    fn write_stdout(&self, text: &str) {
        let _guard = self.stdout.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// One line of output for stdout (see [`Output::stdout`]).
    pub(crate) fn stdout_line(&self, line: &str) {
        self.stdout(&format!("{line}\n"));
    }

    fn line(&self, message: &str) {
        let message = terminal_safe(message);
        if self.terminal {
            let _ = self.bars.println(message);
        } else {
            // One write per message: stderr is unbuffered, and a message written in pieces can
            // interleave with another process's output (and costs a system call per piece).
            let stamp = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
            let mut text = String::with_capacity(message.len() + 16);
            for line in message.lines() {
                text.push('[');
                text.push_str(&stamp);
                text.push_str("] ");
                text.push_str(line);
                text.push('\n');
            }
            let _ = std::io::stderr().write_all(text.as_bytes());
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
            bar.set_prefix(terminal_safe(label).into_owned());
            bar
        }
    }

    /// A bar counting items done out of `total`, with a message (hidden when stderr is not a
    /// terminal).
    pub(crate) fn counter(&self, label: &str, total: u64) -> ProgressBar {
        self.ticking(
            ProgressBar::new(total),
            "{spinner} {prefix} {bar:30} {pos}/{len} {msg}",
            ProgressStyle::default_bar,
            label,
        )
    }

    /// A spinner with a status message (hidden when stderr is not a terminal).
    pub(crate) fn spinner(&self, label: &str) -> ProgressBar {
        self.ticking(
            ProgressBar::new_spinner(),
            "{spinner} {prefix:>20} {msg}",
            ProgressStyle::default_spinner,
            label,
        )
    }

    /// Adds `bar` with `template` (else `fallback`'s style) and `label`, ticking by itself.
    fn ticking(
        &self,
        bar: ProgressBar,
        template: &str,
        fallback: fn() -> ProgressStyle,
        label: &str,
    ) -> ProgressBar {
        let bar = self.bars.add(bar);
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| fallback()));
        bar.set_prefix(terminal_safe(label).into_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// Whether a terminal would act on `c` rather than show it: control characters (C0, DEL, C1,
/// which start escape sequences, move the cursor or ring the bell) and Unicode format
/// characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// characters, the byte-order mark).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` with every character a terminal would act on shown as `\u{..}`, except line breaks
/// and tabs. Borrowed when there is nothing to change, which is almost always.
pub(crate) fn terminal_safe(text: &str) -> Cow<'_, str> {
    escape(
        text,
        |c| c == '\n' || c == '\t',
        |c| format!("\\u{{{:x}}}", u32::from(c)),
    )
}

/// JSON text with every character a terminal would act on written as a `\uXXXX` escape. Such
/// characters can only occur inside JSON strings (serde_json already escapes C0 controls, and
/// JSON's own whitespace is kept), so the JSON value is the same; only DEL, C1 controls and
/// format characters change. Each of them is in the Basic Multilingual Plane: one escape.
pub(crate) fn json_safe(text: &str) -> Cow<'_, str> {
    escape(
        text,
        |c| matches!(c, '\n' | '\t' | '\r'),
        |c| format!("\\u{:04x}", u32::from(c)),
    )
}

/// `text` with each [`is_unsafe`] character that `keep` does not keep replaced by `escaped(c)`.
fn escape(text: &str, keep: fn(char) -> bool, escaped: fn(char) -> String) -> Cow<'_, str> {
    let passes = |c: char| keep(c) || !is_unsafe(c);
    if text.chars().all(passes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if passes(c) {
            out.push(c);
        } else {
            out.push_str(&escaped(c));
        }
    }
    Cow::Owned(out)
}

/// stderr for `tracing` events: each event is buffered, then written through
/// [`terminal_safe`] in one piece when the subscriber drops the writer.
#[derive(Default)]
struct SafeStderr {
    buffer: Vec<u8>,
}

impl Write for SafeStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SafeStderr {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::stderr().write_all(terminal_safe(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_print_as_text() {
        assert_eq!(terminal_safe("plain\ttext\nline"), "plain\ttext\nline");
        assert!(matches!(terminal_safe("plain"), Cow::Borrowed(_)));
        assert_eq!(
            terminal_safe("\u{1b}[2J\u{1b}]0;pwned\u{7}ok\rfake"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}ok\\u{d}fake"
        );
        assert_eq!(terminal_safe("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(terminal_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal_safe("\u{7f}"), "\\u{7f}");
    }

    #[test]
    fn json_stays_the_same_value_without_terminal_controls() {
        let value = serde_json::json!({"log": "a\u{9b}b\u{7f}c\u{202e}d\u{1b}e", "n": "é"});
        let text = serde_json::to_string(&value).unwrap();
        let safe = json_safe(&text);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
        assert!(matches!(json_safe("{\"a\":\"é\"}"), Cow::Borrowed(_)));
    }
}
