//! Every citation of `docs/reference-behaviour.md` in the repository points at an anchor that
//! exists there: `§N.N` at a section (`<a id="sN.N">`), `ref-bug N` (and lists and ranges such
//! as `ref-bugs 2, 3 and 4`, `ref-bugs 19–21`) at an item of §8 (`<a id="ref-bug-N">`), and the
//! page's own `#…` links. The page's former name, `SPEC`, survives only in the GraphQL documents
//! (their comments are part of the query text sent to Dagster+, pinned by a snapshot).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PAGE: &str = "docs/reference-behaviour.md";

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the repository")
        .to_path_buf()
}

/// The anchors the page defines (`<a id="…">`).
fn anchors(page: &str) -> BTreeSet<String> {
    page.split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(id, _)| id.to_owned()))
        .collect()
}

/// The anchors `text` cites: `§N.N` as `sN.N`, `ref-bug(s) N…` and `#ref-bug-N` as
/// `ref-bug-N`, and, in Markdown, `(#id)` links as `id`.
fn citations(text: &str, markdown: bool) -> Vec<String> {
    let mut cited = Vec::new();
    for (at, _) in text.match_indices('§') {
        let number: String = text[at + '§'.len_utf8()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() {
            cited.push(format!("s{number}"));
        }
    }
    for (at, _) in text.match_indices("ref-bug") {
        let rest = &text[at + "ref-bug".len()..];
        if let Some(id) = rest.strip_prefix('-') {
            let number: String = id.chars().take_while(char::is_ascii_digit).collect();
            if !number.is_empty() {
                cited.push(format!("ref-bug-{number}"));
            }
            continue;
        }
        let list = rest.strip_prefix('s').unwrap_or(rest);
        let Some(list) = list.strip_prefix(' ') else {
            continue;
        };
        cited.extend(
            numbers_of_list(list)
                .into_iter()
                .map(|number| format!("ref-bug-{number}")),
        );
    }
    for (at, _) in text.match_indices("(#").filter(|_| markdown) {
        let id: String = text[at + 2..]
            .chars()
            .take_while(|c| !matches!(c, ')' | ' ' | '\n'))
            .collect();
        cited.push(id);
    }
    cited
}

/// The numbers of a list such as `2, 3 and 4`, `19–21` or `10, 11 and 33 add …`.
fn numbers_of_list(list: &str) -> Vec<u32> {
    let mut numbers = Vec::new();
    let mut rest = list;
    let mut range_start: Option<u32> = None;
    loop {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(number) = digits.parse::<u32>() else {
            break;
        };
        match range_start.take() {
            Some(start) => numbers.extend(start..=number),
            None => numbers.push(number),
        }
        rest = &rest[digits.len()..];
        if let Some(after) = rest.strip_prefix('–').or_else(|| rest.strip_prefix('-')) {
            range_start = numbers.pop();
            rest = after;
        } else if let Some(after) = rest
            .strip_prefix(", ")
            .or_else(|| rest.strip_prefix(" and "))
        {
            rest = after;
        } else {
            break;
        }
    }
    numbers
}

/// The repository's text files, outside build output and `.git`.
fn text_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            text_files(&path, files);
        } else if path.extension().is_some_and(|extension| {
            ["rs", "md", "graphql", "sh", "yml", "yaml", "toml", "snap"]
                .iter()
                .any(|known| extension == *known)
        }) {
            files.push(path);
        }
    }
}

#[test]
fn every_reference_behaviour_citation_points_at_an_anchor_of_the_page() {
    let root = repository_root();
    let page = std::fs::read_to_string(root.join(PAGE)).unwrap();
    let anchors = anchors(&page);
    assert!(
        anchors.contains("s8") && anchors.contains("ref-bug-43"),
        "{anchors:?}"
    );
    let mut files = Vec::new();
    text_files(&root, &mut files);
    let mut checked = 0;
    let mut broken = Vec::new();
    let mut spec = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let relative = path.strip_prefix(&root).unwrap().display().to_string();
        let markdown = path.extension().is_some_and(|extension| extension == "md");
        for cited in citations(&text, markdown) {
            checked += 1;
            if !anchors.contains(&cited) {
                broken.push(format!("{relative}: {cited}"));
            }
        }
        let spec_allowed = relative.starts_with("crates/cloud-client/graphql/")
            || relative.starts_with("crates/cloud-client/tests/it/snapshots/")
            || relative == PAGE
            || relative == "tests/tests/it/citations.rs";
        if text.contains("SPEC §") && !spec_allowed {
            spec.push(relative);
        }
    }
    assert!(
        checked > 100,
        "only {checked} citations found: is the scan broken?"
    );
    assert!(
        broken.is_empty(),
        "citations of missing anchors:\n{}",
        broken.join("\n")
    );
    assert!(
        spec.is_empty(),
        "`SPEC §` cites a page that is not in the repository; cite `reference-behaviour §` instead:\n{}",
        spec.join("\n")
    );
}

#[test]
fn citation_lists_and_ranges_are_read_in_full() {
    assert_eq!(
        citations(
            "(reference-behaviour ref-bugs 2, 3, 4) and ref-bugs 19–21; ref-bug 15, and more",
            false
        ),
        [
            "ref-bug-2",
            "ref-bug-3",
            "ref-bug-4",
            "ref-bug-19",
            "ref-bug-20",
            "ref-bug-21",
            "ref-bug-15"
        ]
    );
    assert_eq!(
        citations(
            "see reference-behaviour §1.6.3. And [§8](#s8), [x](#ref-bug-7)",
            true
        ),
        ["s1.6.3", "s8", "ref-bug-7", "s8", "ref-bug-7"]
    );
    assert_eq!(numbers_of_list("10, 11 and 33 add"), [10, 11, 33]);
}
