//! The translation of reference command lines, checked word for word, and the translated
//! lines parsed by our real clap definition.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use super::{DG_DEFAULT_STATEDIR, Environment, Personality, translate};
use crate::args::{Cli, Command, LocationsCommand, OutputFormat};

/// Translates `line` (argv[0] first) in an environment holding `vars`, with or without a terminal.
fn translate_in(
    line: &str,
    vars: &[(&str, &str)],
    terminal: bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    let holds_session = |dir: &std::path::Path| dir == std::path::Path::new("/open-session");
    let environment = Environment {
        var: &lookup,
        stdin_is_terminal: terminal,
        holds_session: &holds_session,
    };
    let argv = line.split_whitespace().map(OsString::from).collect();
    translate(argv, &environment)
        .map(|invocation| {
            (
                invocation
                    .args
                    .into_iter()
                    .map(|arg| arg.into_string().unwrap())
                    .collect(),
                invocation.warnings,
            )
        })
        .map_err(|failure| failure.render())
}

/// Translates `line` with `DAGSTER_BUILD_STATEDIR` set and a terminal, and checks the result.
fn check(line: &str, expected: &str) {
    let (args, warnings) =
        translate_in(line, &[("DAGSTER_BUILD_STATEDIR", "/state")], true).unwrap();
    assert_eq!(args.join(" "), expected, "{line}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

fn parse(args: &[String]) -> Cli {
    let matches = Cli::command().try_get_matches_from(args).unwrap();
    Cli::from_arg_matches(&matches).unwrap()
}

#[test]
fn personality_comes_from_the_program_file_name() {
    assert_eq!(
        Personality::of("/usr/local/bin/dg".as_ref()),
        Personality::Dg
    );
    assert_eq!(Personality::of("dg.exe".as_ref()), Personality::Dg);
    assert_eq!(
        Personality::of("./bin/dagster-cloud".as_ref()),
        Personality::DagsterCloud
    );
    assert_eq!(
        Personality::of("/opt/dagster-deploy".as_ref()),
        Personality::Ours
    );
    assert_eq!(Personality::of("dgx".as_ref()), Personality::Ours);
}

#[test]
fn dg_plus_deploy_commands_become_ours() {
    check(
        "dg plus deploy start --deployment=prod --target-path . --yes",
        "dagster-deploy start --deployment=prod --target-path . --yes",
    );
    check(
        "dg plus deploy set-build-output --location-name=a --image-tag=t1 --target-path=/p",
        "dagster-deploy set-build-output --location-name=a --image-tag=t1",
    );
    check("dg plus deploy finish", "dagster-deploy deploy");
    check(
        "dg plus deploy status",
        "dagster-deploy status --output-format json",
    );
    check(
        "dg plus deploy status --output-format markdown",
        "dagster-deploy status --output-format markdown",
    );
    check(
        "dg plus deploy list-locations",
        "dagster-deploy locations list",
    );
    check(
        "dg plus deploy select a b",
        "dagster-deploy locations select a b",
    );
    check(
        "dg plus deploy deselect a",
        "dagster-deploy locations deselect a",
    );
    check(
        "dg plus deploy build-and-push --agent-type hybrid --build-strategy=docker --python-version 3.12 --target-path /p",
        "dagster-deploy build-and-push --builder docker",
    );
    check(
        "dg plus create ci-api-token --description ci",
        "dagster-deploy ci-api-token create --description ci",
    );
    check(
        "dg plus deploy configure hybrid --git-provider github",
        "dagster-deploy configure --git-provider github",
    );
}

#[test]
fn bare_dg_plus_deploy_is_up_with_the_docker_builder() {
    check(
        "dg plus deploy --deployment prod --yes",
        "dagster-deploy up --deployment prod --yes --builder docker",
    );
    check("dg plus deploy -y", "dagster-deploy up -y --builder docker");
    let cli = parse(
        &translate_in(
            "dg plus deploy --deployment prod --target-path /p --yes",
            &[],
            true,
        )
        .unwrap()
        .0,
    );
    let Command::Up(up) = cli.command else {
        panic!("not up: {:?}", cli.command)
    };
    assert_eq!(up.start.config.project_dir, std::path::Path::new("/p"));
    assert_eq!(up.start.cloud.deployment.as_deref(), Some("prod"));
}

#[test]
fn bare_dg_plus_deploy_without_a_deployment_finishes_an_open_session() {
    let vars = [("DAGSTER_BUILD_STATEDIR", "/open-session")];
    let (args, warnings) = translate_in("dg plus deploy", &vars, false).unwrap();
    assert_eq!(args.join(" "), "dagster-deploy deploy");
    assert!(
        warnings[0].contains("dg plus deploy finish"),
        "{warnings:?}"
    );
    // With a deployment, or without a session, it is the whole pipeline, as in dg.
    let (args, _) = translate_in("dg plus deploy -d prod", &vars, true).unwrap();
    assert_eq!(args.join(" "), "dagster-deploy up -d prod --builder docker");
    let with_deployment = [vars[0], ("DAGSTER_CLOUD_DEPLOYMENT", "prod")];
    let (args, _) = translate_in("dg plus deploy --yes", &with_deployment, true).unwrap();
    assert_eq!(args.join(" "), "dagster-deploy up --yes --builder docker");
    let (args, _) = translate_in(
        "dg plus deploy --yes",
        &[("DAGSTER_BUILD_STATEDIR", "/empty")],
        true,
    )
    .unwrap();
    assert_eq!(args.join(" "), "dagster-deploy up --yes --builder docker");
}

#[test]
fn dg_without_a_statedir_uses_the_reference_default_and_warns() {
    let (args, warnings) = translate_in("dg plus deploy finish", &[], true).unwrap();
    assert_eq!(
        args.join(" "),
        format!("dagster-deploy deploy --statedir {DG_DEFAULT_STATEDIR}")
    );
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("DAGSTER_BUILD_STATEDIR"),
        "{warnings:?}"
    );
    // An explicit --statedir is kept, and configure needs no session at all.
    let (args, warnings) = translate_in("dg plus deploy finish --statedir /s", &[], true).unwrap();
    assert_eq!(args.join(" "), "dagster-deploy deploy --statedir /s");
    assert!(warnings.is_empty());
    let (args, _) = translate_in("dg plus deploy configure", &[], true).unwrap();
    assert_eq!(args.join(" "), "dagster-deploy configure");
}

#[test]
fn dg_start_without_a_terminal_follows_the_guess_and_says_so() {
    let (args, warnings) = translate_in(
        "dg plus deploy start --deployment=prod --project-dir=.",
        &[("DAGSTER_BUILD_STATEDIR", "/state")],
        false,
    )
    .unwrap();
    assert_eq!(
        args.join(" "),
        "dagster-deploy start --deployment=prod --project-dir=. --yes"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    check(
        "dg plus deploy start --deployment-type full",
        "dagster-deploy start --deployment-type full",
    );
}

#[test]
fn dagster_cloud_ci_commands_become_ours() {
    check(
        "dagster-cloud ci init --statedir /s --project-dir p -d prod",
        "dagster-deploy start --statedir /s --project-dir p -d prod --dagster-cloud-yaml-path dagster_cloud.yaml --no-require-branch-deployment",
    );
    check(
        "dagster-cloud ci init --require-branch-deployment --dagster-cloud-yaml-path x.yaml",
        "dagster-deploy start --require-branch-deployment --dagster-cloud-yaml-path x.yaml",
    );
    check(
        "dagster-cloud ci check --project-dir p --dagster-cloud-connect-check skip",
        "dagster-deploy check --project-dir p --dagster-cloud-connect-check skip --dagster-cloud-yaml-path dagster_cloud.yaml",
    );
    check(
        "dagster-cloud ci status --statedir /s",
        "dagster-deploy status --statedir /s --output-format json",
    );
    check(
        "dagster-cloud ci locations-deselect a",
        "dagster-deploy locations deselect a",
    );
    check(
        "dagster-cloud ci branch-deployment . --base-deployment-name prod",
        "dagster-deploy branch-deployment . --base-deployment-name prod",
    );
    check(
        "dagster-cloud ci deploy --agent-timeout 30",
        "dagster-deploy deploy --agent-timeout 30",
    );
}

#[test]
fn our_own_name_takes_the_reference_command_names_too() {
    check(
        "dagster-deploy select a",
        "dagster-deploy locations select a",
    );
    check(
        "dagster-deploy --statedir /s list-locations",
        "dagster-deploy --statedir /s locations list-locations",
    );
    check(
        "dagster-deploy locations-deselect a",
        "dagster-deploy locations locations-deselect a",
    );
    check("dagster-deploy status", "dagster-deploy status");
    let cli = parse(&[
        "dagster-deploy".into(),
        "locations".into(),
        "list-locations".into(),
    ]);
    assert!(matches!(
        cli.command,
        Command::Locations(LocationsCommand::List)
    ));
}

#[test]
fn reference_commands_we_do_not_implement_name_the_reference_command() {
    for (line, command) in [
        (
            "dagster-cloud ci build --statedir /s",
            "dagster-cloud ci build",
        ),
        ("dagster-cloud ci template", "dagster-cloud ci template"),
        ("dagster-cloud ci inspect", "dagster-cloud ci inspect"),
        (
            "dagster-cloud serverless deploy",
            "dagster-cloud serverless",
        ),
        (
            "dg plus deploy refresh-defs-state",
            "dg plus deploy refresh-defs-state",
        ),
        ("dg plus deploy inspect", "dg plus deploy inspect"),
        ("dg plus login", "dg plus login"),
        ("dg list defs", "dg list"),
        (
            "dg plus deploy build-and-push --agent-type serverless",
            "dg plus deploy --agent-type serverless",
        ),
        (
            "dg plus deploy --build-strategy python-executable",
            "dg plus deploy --build-strategy python-executable",
        ),
    ] {
        let error = translate_in(line, &[], true).unwrap_err();
        assert!(
            error.contains(&format!("`{command}` is not implemented by dagster-deploy")),
            "{line}: {error}"
        );
        assert!(error.contains("uvx --from dagster-"), "{line}: {error}");
    }
}

#[test]
fn the_reference_notify_commands_are_our_notify() {
    check(
        "dg plus deploy notify --project-dir /p",
        "dagster-deploy notify --project-dir /p",
    );
    check(
        "dagster-cloud ci notify --statedir /s --project-dir /p",
        "dagster-deploy notify --statedir /s --project-dir /p",
    );
}

#[test]
fn reference_flag_spellings_parse_as_our_flags() {
    let cli = parse(
        &"dagster-deploy deploy --agent-timeout 7"
            .split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    let Command::Deploy(deploy) = cli.command else {
        panic!()
    };
    // The reference's --agent-timeout sets the heartbeat timeout (reference-behaviour ref-bug 9).
    assert_eq!(deploy.agent_heartbeat_timeout, Some(7));
    assert_eq!(deploy.location_load_timeout, None);

    let (args, _) = translate_in(
        "dagster-cloud ci init --statedir /s --target-path p -u secret --base-deployment-name prod --no-clean-statedir --require-branch-deployment",
        &[],
        true,
    )
    .unwrap();
    let Command::Start(start) = parse(&args).command else {
        panic!()
    };
    assert_eq!(start.config.project_dir, std::path::Path::new("p"));
    assert_eq!(start.cloud.api_token.as_deref(), Some("secret"));
    assert_eq!(start.cloud.deployment.as_deref(), Some("prod"));
    assert!(start.no_clean_statedir && start.require_branch_deployment);

    let (args, _) = translate_in("dagster-cloud ci status --statedir /s", &[], true).unwrap();
    let Command::Status(status) = parse(&args).command else {
        panic!()
    };
    assert_eq!(status.output_format, OutputFormat::Json);
}
