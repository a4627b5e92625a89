//! `--help` of the top level and of every subcommand, and `--version`, as snapshots. A walk of
//! the command tree checks that every command has a snapshot test here.

use crate::support::Sandbox;

// Help texts hold no paths, ports or clocks, so they are snapshotted without filters (the port
// filter would also rewrite the `127.0.0.1:5000` example of `image push`).

/// Every command path below the top level, in help order. A command added to the CLI must be
/// added here (and gets its snapshot test below).
const COMMANDS: &[&str] = &[
    "start",
    "build-and-push",
    "set-build-output",
    "deploy",
    "up",
    "status",
    "notify",
    "locations",
    "locations list",
    "locations select",
    "locations deselect",
    "state",
    "state merge",
    "check",
    "image",
    "image push",
    "branch-deployment",
    "branch-deployment delete",
    "ci-api-token",
    "ci-api-token create",
    "configure",
    "completions",
];

fn help(path: &str) -> String {
    let run = Sandbox::new()
        .cli(path.split_whitespace().chain(["--help"]))
        .run()
        .success();
    assert!(
        run.stderr.is_empty(),
        "help wrote to stderr: {}",
        run.stderr
    );
    run.stdout
}

/// The subcommand names listed under `Commands:` in a help text, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("    "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

fn walk(path: &str, found: &mut Vec<String>) {
    for name in subcommands(&help(path)) {
        let child = format!("{path} {name}").trim().to_owned();
        found.push(child.clone());
        walk(&child, found);
    }
}

#[test]
fn every_command_in_the_tree_has_a_help_snapshot_test() {
    let mut found = Vec::new();
    walk("", &mut found);
    assert_eq!(
        found, COMMANDS,
        "the command tree changed: update COMMANDS and add a help test"
    );
}

#[test]
fn top_level_help() {
    let text = help("");
    // The exit-code table is part of the contract CI scripts rely on.
    assert!(text.contains("8  timed out"), "{text}");
    insta::assert_snapshot!("help", text);
}

macro_rules! help_tests {
    ($($test:ident => $path:literal,)*) => {
        $(
            #[test]
            fn $test() {
                assert!(COMMANDS.contains(&$path), "{} is not in COMMANDS", $path);
                insta::assert_snapshot!(concat!("help_", stringify!($test)), help($path));
            }
        )*

        #[test]
        fn every_command_has_exactly_one_help_test() {
            let tested = [$($path),*];
            assert_eq!(tested.as_slice(), COMMANDS);
        }
    };
}

help_tests! {
    start => "start",
    build_and_push => "build-and-push",
    set_build_output => "set-build-output",
    deploy => "deploy",
    up => "up",
    status => "status",
    notify => "notify",
    locations => "locations",
    locations_list => "locations list",
    locations_select => "locations select",
    locations_deselect => "locations deselect",
    state => "state",
    state_merge => "state merge",
    check => "check",
    image => "image",
    image_push => "image push",
    branch_deployment => "branch-deployment",
    branch_deployment_delete => "branch-deployment delete",
    ci_api_token => "ci-api-token",
    ci_api_token_create => "ci-api-token create",
    configure => "configure",
    completions => "completions",
}

#[test]
fn finish_is_an_alias_of_deploy() {
    assert_eq!(help("finish"), help("deploy"));
}

#[test]
fn version_prints_the_package_version_commit_and_target() {
    let run = Sandbox::new().cli(["--version"]).run().success();
    let rest = run
        .stdout
        .strip_prefix(&format!(
            "dagster-deploy {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("unexpected --version: {:?}", run.stdout));
    let (commit, target) = rest
        .strip_suffix(")\n")
        .and_then(|rest| rest.split_once(", "))
        .unwrap_or_else(|| panic!("unexpected --version: {:?}", run.stdout));
    // The test runs from the checkout the binary was built from, so git knows the commit.
    let head = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .expect("git is installed (apt-get install -y git)");
    assert!(head.status.success(), "not a git checkout");
    assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains(std::env::consts::OS),
        "{target}"
    );
}
