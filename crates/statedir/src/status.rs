//! The three renderings of a session's status: JSON lines and the markdown report, both byte for
//! byte as the reference's `status` command prints them (reference-behaviour §3.8), and a plain
//! aligned table.
//!
//! Text in a session can come from elsewhere (copies merged from other CI jobs, load errors
//! from Dagster+), so the markdown report escapes names and links: a `|` cannot end a cell,
//! and `<`, `>`, `&`, `[`, `]` and backticks cannot start HTML, links or code. Names and URLs
//! made of letters, digits, `-`, `_`, `.`, `/` and `:` print exactly as the reference prints
//! them. Terminal control characters are the caller's to neutralise where it prints.

use jiff::tz::TimeZone;

use crate::error::Result;
use crate::format;
use crate::model::{LocationState, RecordedOutcome, Status, StatusChange};
use crate::session::Session;

const IMAGE_BASE: &str =
    "https://raw.githubusercontent.com/dagster-io/dagster-cloud-action/main/assets";
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Session {
    /// `status --output-format json`: one line per location (deselected too), each the state
    /// object exactly as stored, each ending with a newline. Print it verbatim.
    pub fn status_json_lines(&self) -> Result<String> {
        Ok(json_lines(&self.locations()?))
    }

    /// `status --output-format markdown`: the report as the reference prints it, including its
    /// leading and trailing blank lines. Print it verbatim (no extra newline).
    pub fn status_markdown(&self) -> Result<String> {
        Ok(markdown(&self.locations_with_outcomes()?))
    }

    /// The deploy report a pull-request comment shows: a line naming the deployment (linked)
    /// and the commit, then one row per selected location with its status (linked to the CI
    /// run while building, to Dagster+ otherwise), its image, a link to the location in
    /// Dagster+, the time of its last change and, unless it succeeded, its last log line.
    /// Everything from the session is escaped as in the markdown report. At most
    /// `max_locations` rows are shown, then a line counts the rest (a comment has a size limit).
    pub fn pull_request_report(&self, max_locations: usize) -> Result<String> {
        Ok(pull_request_report(
            &self.locations_with_outcomes()?,
            max_locations,
        ))
    }

    /// A plain table for terminals: location, selected, status, last update, image, last log.
    /// The status is the history's, refined where a deploy of ours recorded more (`not
    /// tracked`, `interrupted`, `superseded` instead of `pending`, `unchanged` instead of
    /// `success`).
    pub fn status_table(&self) -> Result<String> {
        Ok(table(&self.locations_with_outcomes()?))
    }

    /// The table of [`Session::status_table`] and how many locations have each of its
    /// statuses (most frequent first), read once.
    pub fn status_table_with_counts(&self) -> Result<(String, Vec<(String, usize)>)> {
        let states = self.locations_with_outcomes()?;
        Ok((table(&states), status_counts(&states)))
    }
}

pub(crate) fn json_lines(states: &[LocationState]) -> String {
    let mut out = String::new();
    for state in states {
        out.push_str(&format::render_location(state));
        out.push('\n');
    }
    out
}

/// What a pending entry refined by our outcome says in the markdown report.
fn pending_message(outcome: Option<RecordedOutcome>) -> &'static str {
    match outcome {
        Some(RecordedOutcome::NotTracked) => "Deploy not tracked",
        Some(RecordedOutcome::Interrupted) => "Deploy interrupted",
        Some(RecordedOutcome::Superseded) => "Changed during deploy",
        _ => "Building...",
    }
}

pub(crate) fn markdown(states: &[(LocationState, Option<RecordedOutcome>)]) -> String {
    let mut out = String::from(
        "\n| Location          | Status          | Link    | Updated         |\n| ----------------- | --------------- | ------- | --------------- | \n",
    );
    for (state, outcome) in states.iter().filter(|(state, _)| state.selected) {
        let Some(last) = state.last_status() else {
            continue;
        };
        let (image, message) = match last.status {
            Status::Success if *outcome == Some(RecordedOutcome::Unchanged) => {
                ("success", "Unchanged")
            }
            Status::Success => ("success", "View in Cloud"),
            Status::Pending => ("pending", pending_message(*outcome)),
            Status::Failed => ("failed", "Deploy failed"),
        };
        let cloud_link = format!("{}/{}/locations", state.url, state.deployment_name);
        let link = match (&last.status, &state.status_url) {
            (Status::Success, _) | (_, None) => cloud_link.as_str(),
            (_, Some(status_url)) => status_url.as_str(),
        };
        let link = markdown_link(link);
        out.push_str(&format!(
            "| {name} | [<img src=\"{IMAGE_BASE}/{image}.png\" width=25 height=25/>]({link})  | [{message}]({link})  | {time} |\n",
            name = markdown_text(&state.location_name),
            time = report_time(last),
        ));
    }
    // The reference's `echo` adds one more newline after the report.
    out.push('\n');
    out
}

/// A change's time as the reference's report writes it: `Mon DD, YYYY at HH:MM AM|PM (TZ)`.
fn report_time(change: &StatusChange) -> String {
    let time = TimeZone::UTC.to_datetime(change.timestamp);
    let hour12 = match time.hour() % 12 {
        0 => 12,
        hour => hour,
    };
    let meridiem = if time.hour() < 12 { "AM" } else { "PM" };
    let zone = if change.is_naive() { "" } else { "UTC" };
    let month = MONTHS[usize::try_from(time.month() - 1).unwrap_or(0)];
    format!(
        "{month} {day:02}, {year:04} at {hour12:02}:{minute:02} {meridiem} ({zone})",
        day = time.day(),
        year = time.year(),
        minute = time.minute(),
    )
}

/// The longest log excerpt a report row shows.
const REPORT_LOG_CHARS: usize = 300;

pub(crate) fn pull_request_report(
    states: &[(LocationState, Option<RecordedOutcome>)],
    max_locations: usize,
) -> String {
    let selected: Vec<_> = states.iter().filter(|(state, _)| state.selected).collect();
    let mut out = String::new();
    match selected.first() {
        Some((first, _)) => {
            let kind = if first.is_branch_deployment {
                "branch deployment"
            } else {
                "deployment"
            };
            let deployment_link =
                markdown_link(&format!("{}/{}/", first.url, first.deployment_name));
            out.push_str(&format!(
                "**Dagster+ deploy** to {kind} [{name}]({deployment_link})",
                name = markdown_text(&first.deployment_name),
            ));
            if let Some(commit) = first
                .build
                .git
                .commit_hash
                .as_deref()
                .filter(|hash| !hash.is_empty())
            {
                let short: String = commit.chars().take(12).collect();
                out.push_str(&format!(" of commit {}", markdown_text(&short)));
            }
            out.push_str("\n\n");
        }
        None => {
            out.push_str("**Dagster+ deploy**: no location is selected in this session.\n");
            return out;
        }
    }
    out.push_str(
        "| Location | Status | Image | Updated | Details |\n| --- | --- | --- | --- | --- |\n",
    );
    for (state, outcome) in selected.iter().take(max_locations) {
        let location_link = markdown_link(&format!(
            "{}/{}/locations/{}",
            state.url,
            state.deployment_name,
            percent_encode_segment(&state.location_name)
        ));
        let name = format!("[{}]({location_link})", markdown_text(&state.location_name));
        let image = state.image().map_or_else(|| "—".to_owned(), markdown_text);
        let Some(last) = state.last_status() else {
            out.push_str(&format!("| {name} | Not started | {image} | — | |\n"));
            continue;
        };
        let (mark, message) = match last.status {
            Status::Success if *outcome == Some(RecordedOutcome::Unchanged) => ("✅", "Unchanged"),
            Status::Success => ("✅", "Deployed"),
            Status::Pending => ("⏳", pending_message(*outcome)),
            Status::Failed => ("❌", "Deploy failed"),
        };
        let status_link = match (&last.status, &state.status_url) {
            (Status::Success, _) | (_, None) => location_link.clone(),
            (_, Some(status_url)) => markdown_link(status_url),
        };
        let details = if last.status == Status::Success {
            String::new()
        } else {
            let line = last.log.lines().next().unwrap_or_default();
            let mut excerpt: String = line.chars().take(REPORT_LOG_CHARS).collect();
            if line.chars().count() > REPORT_LOG_CHARS {
                excerpt.push('…');
            }
            markdown_text(&excerpt)
        };
        out.push_str(&format!(
            "| {name} | {mark} [{message}]({status_link}) | {image} | {time} | {details} |\n",
            time = report_time(last),
        ));
    }
    if selected.len() > max_locations {
        out.push_str(&format!(
            "\n…and {} more location(s); the full report is in the deploy job's log.\n",
            selected.len() - max_locations
        ));
    }
    out
}

/// A location name as one URL path segment: everything but unreserved characters
/// percent-encoded, so that a `/` or `?` in a name cannot change the link's path.
fn percent_encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Text inside a markdown table cell: everything that could end the cell or start markup is
/// escaped, and control characters (a line break would end the row) are written as `\u{..}`.
pub(crate) fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '[' | ']' | '`' | '*' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_invisible_format(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// A link target: characters that could end the link or the cell, or start HTML, are
/// percent-encoded.
pub(crate) fn markdown_link(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_control()
            || is_invisible_format(c)
            || matches!(
                c,
                ' ' | '<' | '>' | '(' | ')' | '[' | ']' | '|' | '"' | '\'' | '\\' | '`'
            )
        {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode format characters that change how the surrounding text displays (bidirectional
/// overrides and isolates, zero-width characters) without being control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The status a table shows for a location: the history's, refined by our outcome.
fn status_word(state: &LocationState, outcome: Option<RecordedOutcome>) -> String {
    match (state.last_status(), outcome) {
        (Some(change), Some(outcome))
            if change.status == Status::Pending || outcome == RecordedOutcome::Unchanged =>
        {
            outcome.to_string()
        }
        (Some(change), _) => change.status.to_string(),
        (None, _) => "-".to_owned(),
    }
}

/// How many locations have each status, as the table words them, most frequent first (then by
/// name); `-` counts locations without history.
pub(crate) fn status_counts(
    states: &[(LocationState, Option<RecordedOutcome>)],
) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (state, outcome) in states {
        *counts.entry(status_word(state, *outcome)).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

pub(crate) fn table(states: &[(LocationState, Option<RecordedOutcome>)]) -> String {
    let header = [
        "LOCATION", "SELECTED", "STATUS", "UPDATED", "IMAGE", "LAST LOG",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for (state, outcome) in states {
        let last = state.last_status();
        let status = status_word(state, *outcome);
        rows.push([
            state.location_name.clone(),
            if state.selected { "yes" } else { "no" }.to_owned(),
            status,
            last.map_or("-".to_owned(), |change| {
                TimeZone::UTC
                    .to_datetime(change.timestamp)
                    .strftime("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            }),
            state.image().unwrap_or("-").to_owned(),
            last.map_or("-".to_owned(), |change| change.log.clone()),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
