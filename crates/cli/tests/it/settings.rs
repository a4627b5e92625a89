//! Settings precedence (flag, then env var, then the `dg plus login` config file), what
//! `--verbose` says about where each value came from, and that the API token never appears in
//! any output, whether it comes from the environment or from a config file.

use dagster_deploy_e2e::{Emulator, EmulatorConfig};

use crate::support::{Cli, Run, Sandbox, TOKEN, snapshot};

/// A legacy (`dagster-cloud`) config file.
fn legacy_config(organization: &str, deployment: &str, token: &str) -> String {
    format!(
        "organization: {organization}\ndefault_deployment: {deployment}\nuser_token: \"{token}\"\n"
    )
}

/// A `dg` config file with a `[cli.plus]` table.
fn dg_config(organization: &str, deployment: &str, token: &str) -> String {
    format!(
        "[cli]\nverbose = false\n\n[cli.plus]\norganization = \"{organization}\"\ndefault_deployment = \"{deployment}\"\nuser_token = \"{token}\"\n"
    )
}

/// `--verbose start` for the sandbox project without contacting Dagster+; the caller adds
/// flags and env vars.
fn start(sandbox: &Sandbox) -> Cli {
    sandbox
        .in_session([
            "--verbose",
            "start",
            "--skip-validation",
            "--deployment-type",
            "full",
        ])
        .arg("--dagster-cloud-yaml")
        .arg(sandbox.yaml())
}

/// The organization URL and deployment the session records for its first location.
fn recorded_target(sandbox: &Sandbox) -> (String, String) {
    let states = sandbox.states();
    (
        states[0]["url"].as_str().expect("url").to_owned(),
        states[0]["deployment_name"]
            .as_str()
            .expect("deployment")
            .to_owned(),
    )
}

fn assert_says(run: &Run, line: &str) {
    assert!(
        run.stderr.lines().any(|printed| printed.ends_with(line)),
        "expected a line ending with {line:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn a_flag_beats_the_env_var_and_the_config_file() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("fromfile", "filedep", TOKEN),
    );
    let run = start(&sandbox)
        .args(["--organization", "fromflag", "--deployment", "flagdep"])
        .env("DAGSTER_CLOUD_ORGANIZATION", "fromenv")
        .env("DAGSTER_CLOUD_DEPLOYMENT", "envdep")
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(&run, "organization: fromflag (from flag --organization)");
    assert_says(&run, "deployment: flagdep (from flag --deployment)");
    assert_eq!(
        recorded_target(&sandbox),
        (
            "https://fromflag.dagster.cloud".to_owned(),
            "flagdep".to_owned()
        )
    );
    run.assert_hides(TOKEN);
}

#[test]
fn an_env_var_beats_the_config_file() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("fromfile", "filedep", TOKEN),
    );
    let run = start(&sandbox)
        .env("DAGSTER_CLOUD_ORGANIZATION", "fromenv")
        .env("DAGSTER_CLOUD_DEPLOYMENT", "envdep")
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(
        &run,
        "organization: fromenv (from env var DAGSTER_CLOUD_ORGANIZATION)",
    );
    assert_says(
        &run,
        "deployment: envdep (from env var DAGSTER_CLOUD_DEPLOYMENT)",
    );
    assert_eq!(
        recorded_target(&sandbox),
        (
            "https://fromenv.dagster.cloud".to_owned(),
            "envdep".to_owned()
        )
    );
    run.assert_hides(TOKEN);
}

#[test]
fn an_empty_env_var_counts_as_unset() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("fromfile", "filedep", TOKEN),
    );
    let run = start(&sandbox)
        .env("DAGSTER_CLOUD_ORGANIZATION", "")
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(
        &run,
        &format!(
            "organization: fromfile (from config file {})",
            config.display()
        ),
    );
}

#[test]
fn the_legacy_yaml_config_file_fills_in_what_flags_and_env_leave_out() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("fromfile", "filedep", TOKEN),
    );
    let run = start(&sandbox)
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    let source = format!("(from config file {})", config.display());
    assert_says(&run, &format!("organization: fromfile {source}"));
    assert_says(&run, &format!("deployment: filedep {source}"));
    assert_eq!(
        recorded_target(&sandbox),
        (
            "https://fromfile.dagster.cloud".to_owned(),
            "filedep".to_owned()
        )
    );
    run.assert_hides(TOKEN);
    snapshot!("verbose_start_from_legacy_config", run.stderr);
}

#[test]
fn the_dg_toml_config_file_fills_in_what_flags_and_env_leave_out() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write("home/dg.toml", &dg_config("fromdg", "dgdep", TOKEN));
    let run = start(&sandbox)
        .env("DG_CLI_CONFIG", &config)
        .run()
        .success();
    let source = format!("(from config file {})", config.display());
    assert_says(&run, &format!("organization: fromdg {source}"));
    assert_says(&run, &format!("deployment: dgdep {source}"));
    assert_eq!(
        recorded_target(&sandbox),
        (
            "https://fromdg.dagster.cloud".to_owned(),
            "dgdep".to_owned()
        )
    );
    run.assert_hides(TOKEN);
}

#[test]
fn the_default_config_file_locations_under_home_are_read() {
    let sandbox = Sandbox::with_project();
    sandbox.write(
        "home/.config/dg.toml",
        &dg_config("fromhome", "homedep", TOKEN),
    );
    let run = start(&sandbox).run().success();
    assert_says(
        &run,
        &format!(
            "organization: fromhome (from config file {})",
            sandbox.home().join(".config/dg.toml").display()
        ),
    );
}

#[test]
fn with_both_config_files_the_legacy_file_wins_with_a_warning() {
    let sandbox = Sandbox::with_project();
    let legacy = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("fromfile", "filedep", TOKEN),
    );
    let dg = sandbox.write("home/dg.toml", &dg_config("fromdg", "dgdep", TOKEN));
    let run = start(&sandbox)
        .env("DAGSTER_CLOUD_CLI_CONFIG", &legacy)
        .env("DG_CLI_CONFIG", &dg)
        .run()
        .success();
    assert!(
        run.stderr.contains(&format!(
            "warning: found Dagster+ config in both {} and {}",
            legacy.display(),
            dg.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(recorded_target(&sandbox).1, "filedep");
}

/// `--verbose check` of the sandbox project against the emulator, which accepts only [`TOKEN`].
fn check(sandbox: &Sandbox, emulator: &Emulator) -> Cli {
    sandbox
        .cli(["--verbose", "check", "--dagster-cloud-yaml"])
        .arg(sandbox.yaml())
        .env("DAGSTER_CLOUD_URL", emulator.url())
}

fn token_checking_emulator() -> Emulator {
    Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN))
}

#[test]
fn the_token_env_var_beats_the_config_file_and_is_never_printed() {
    let emulator = token_checking_emulator();
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config("acme", "prod", "user:wrong-token-from-file"),
    );
    let run = check(&sandbox, &emulator)
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(
        &run,
        "API token: set (from env var DAGSTER_CLOUD_API_TOKEN)",
    );
    run.assert_hides(TOKEN);
    run.assert_hides("wrong-token-from-file");
    assert!(!emulator.requests().is_empty(), "check contacted Dagster+");
    snapshot!("verbose_check_token_from_env", run.stderr);
}

#[test]
fn a_token_from_the_legacy_config_file_is_used_and_never_printed() {
    let emulator = token_checking_emulator();
    let sandbox = Sandbox::with_project();
    let config = sandbox.write("home/legacy.yaml", &legacy_config("acme", "prod", TOKEN));
    let run = check(&sandbox, &emulator)
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(
        &run,
        &format!("API token: set (from config file {})", config.display()),
    );
    run.assert_hides(TOKEN);
}

#[test]
fn a_token_from_the_dg_config_file_is_used_and_never_printed() {
    let emulator = token_checking_emulator();
    let sandbox = Sandbox::with_project();
    let config = sandbox.write("home/dg.toml", &dg_config("acme", "prod", TOKEN));
    let run = check(&sandbox, &emulator)
        .env("DG_CLI_CONFIG", &config)
        .run()
        .success();
    assert_says(
        &run,
        &format!("API token: set (from config file {})", config.display()),
    );
    run.assert_hides(TOKEN);
}

#[test]
fn a_refused_token_is_an_auth_error_that_never_prints_it() {
    let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token("other"));
    let sandbox = Sandbox::with_project();
    let from_env = check(&sandbox, &emulator)
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(4);
    from_env.assert_hides(TOKEN);
    let config = sandbox.write("home/dg.toml", &dg_config("acme", "prod", TOKEN));
    let from_file = check(&sandbox, &emulator)
        .env("DG_CLI_CONFIG", &config)
        .run()
        .code(4);
    from_file.assert_hides(TOKEN);
    snapshot!("refused_token", from_file.stderr);
}

#[test]
fn a_malformed_toml_config_file_is_reported_without_quoting_the_token() {
    let sandbox = Sandbox::with_project();
    // An unquoted value: TOML parsers like to quote the offending line in their errors.
    let config = sandbox.write(
        "home/dg.toml",
        &format!("[cli.plus]\norganization = \"acme\"\nuser_token = {TOKEN}\n"),
    );
    let run = sandbox
        .cli(["--verbose", "check", "--dagster-cloud-yaml"])
        .arg(sandbox.yaml())
        .env("DG_CLI_CONFIG", &config)
        .run()
        .code(3);
    run.assert_hides(TOKEN);
    run.assert_hides("Sekr1t");
    assert!(
        run.stderr.contains(&format!("{}:3:", config.display())),
        "the error names the file and line:\n{}",
        run.stderr
    );
    snapshot!("malformed_toml_config", run.stderr);
}

#[test]
fn a_malformed_yaml_config_file_is_reported_without_quoting_the_token() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &format!("organization: acme\nuser_token: {{{TOKEN}\nunknown_key: 1\n"),
    );
    let run = sandbox
        .cli(["--verbose", "check", "--dagster-cloud-yaml"])
        .arg(sandbox.yaml())
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .code(3);
    run.assert_hides(TOKEN);
    run.assert_hides("Sekr1t");
    assert!(
        run.stderr.contains(&config.display().to_string()),
        "{}",
        run.stderr
    );
}

#[test]
fn the_token_is_not_printed_on_a_deploy_failure_either() {
    let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN));
    emulator.update_config(|config| config.deploy_error = Some("rejected".to_owned()));
    let sandbox = Sandbox::built(&emulator.url());
    let run = sandbox
        .in_session(["--verbose", "deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(6);
    run.assert_hides(TOKEN);
    // Nor is it written to the state directory.
    for state in sandbox.states() {
        assert!(!state.to_string().contains(TOKEN));
    }
}

/// A legacy config file with a `url:` as well.
fn legacy_config_with_url(url: &str, token: &str) -> String {
    format!("url: {url}\n{}", legacy_config("acme", "prod", token))
}

#[test]
fn a_configured_url_is_used_as_the_base_of_the_organization_url() {
    let emulator = token_checking_emulator();
    for file in ["legacy", "dg"] {
        let sandbox = Sandbox::with_project();
        let (variable, config) = if file == "legacy" {
            (
                "DAGSTER_CLOUD_CLI_CONFIG",
                sandbox.write(
                    "home/legacy.yaml",
                    &legacy_config_with_url(&emulator.url(), TOKEN),
                ),
            )
        } else {
            (
                "DG_CLI_CONFIG",
                sandbox.write(
                    "home/dg.toml",
                    &dg_config("acme", "prod", TOKEN).replace(
                        "[cli.plus]\n",
                        &format!("[cli.plus]\nurl = \"{}\"\n", emulator.url()),
                    ),
                ),
            )
        };
        emulator.clear_requests();
        let run = sandbox
            .cli(["--verbose", "check", "--dagster-cloud-yaml"])
            .arg(sandbox.yaml())
            .env(variable, &config)
            .run()
            .success();
        assert_says(
            &run,
            &format!(
                "organization URL: {}/acme (from url {} in config file {}, and the organization)",
                emulator.url(),
                emulator.url(),
                config.display()
            ),
        );
        let requests = emulator.requests();
        assert!(
            !requests.is_empty(),
            "{file}: the configured server was used"
        );
        assert!(
            requests
                .iter()
                .all(|request| request.path.starts_with("/acme/")),
            "{file}: {:?}",
            requests
                .iter()
                .map(|request| &request.path)
                .collect::<Vec<_>>()
        );
        run.assert_hides(TOKEN);
    }
}

#[test]
fn region_urls_in_the_config_file_keep_the_host_form() {
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &legacy_config_with_url("https://eu.dagster.cloud/", TOKEN),
    );
    let run = start(&sandbox)
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .success();
    assert_eq!(recorded_target(&sandbox).0, "https://acme.eu.dagster.cloud");
    assert_says(
        &run,
        &format!(
            "organization URL: https://acme.eu.dagster.cloud (from region eu of url https://eu.dagster.cloud/ in config file {}, and the organization)",
            config.display()
        ),
    );
}

#[test]
fn the_config_file_agent_timeout_bounds_the_load_wait_and_verbose_says_so() {
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(std::time::Duration::from_secs(30)),
    );
    let sandbox = Sandbox::with_project();
    let config = sandbox.write(
        "home/legacy.yaml",
        &format!("{}agent_timeout: 1\n", legacy_config("acme", "prod", TOKEN)),
    );
    sandbox.start(Some(&emulator.url()));
    sandbox
        .in_session(["set-build-output", "--image-tag", "v1"])
        .run()
        .success();
    let started = std::time::Instant::now();
    let run = sandbox
        .in_session(["--verbose", "deploy"])
        .env("DAGSTER_CLOUD_CLI_CONFIG", &config)
        .run()
        .code(8);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_says(
        &run,
        &format!(
            "location load timeout: 1 s (from agent_timeout in config file {})",
            config.display()
        ),
    );
    assert_says(&run, "request timeout: 60 s (default)");
    run.assert_hides(TOKEN);
}

#[test]
fn the_token_never_goes_to_a_session_url_this_job_did_not_configure() {
    let sandbox = Sandbox::with_project();
    // A state file from another job (or edited) names a host nobody configured here.
    sandbox.start(Some("https://collector.example.invalid/acme"));
    sandbox
        .in_session(["set-build-output", "--image-tag", "v1"])
        .run()
        .success();
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .env("DAGSTER_CLOUD_URL", "https://acme.dagster.cloud")
        .run()
        .code(3);
    assert!(
        run.stderr
            .contains("refusing to send the API token to https://collector.example.invalid/acme")
            && run.stderr.contains("DAGSTER_CLOUD_URL"),
        "{}",
        run.stderr
    );
    run.assert_hides(TOKEN);
    let unconfigured = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(3);
    unconfigured.assert_hides(TOKEN);
}

/// A server that accepts connections and never answers.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{address}")
}

#[test]
fn the_request_timeout_has_a_flag_and_an_env_var_and_the_hint_names_them() {
    let url = silent_server();
    let sandbox = Sandbox::with_project();
    for (flag, env) in [(Some("1"), None), (None, Some("1"))] {
        let mut cli = sandbox.cli(["--verbose", "check", "--dagster-cloud-yaml"]);
        cli = cli.arg(sandbox.yaml());
        if let Some(seconds) = flag {
            cli = cli.args(["--request-timeout", seconds]);
        }
        if let Some(seconds) = env {
            cli = cli.env("DAGSTER_DEPLOY_REQUEST_TIMEOUT", seconds);
        }
        let started = std::time::Instant::now();
        let run = cli
            .env("DAGSTER_CLOUD_URL", &url)
            .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
            .run()
            .code(8);
        // Four attempts of one second, and short backoffs in between.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert!(
            run.stderr.contains("did not answer within 1s")
                && run.stderr.contains("--request-timeout")
                && run.stderr.contains("DAGSTER_DEPLOY_REQUEST_TIMEOUT"),
            "{}",
            run.stderr
        );
        let source = if flag.is_some() {
            "flag --request-timeout"
        } else {
            "env var DAGSTER_DEPLOY_REQUEST_TIMEOUT"
        };
        assert_says(&run, &format!("request timeout: 1 s (from {source})"));
        run.assert_hides(TOKEN);
    }
}
