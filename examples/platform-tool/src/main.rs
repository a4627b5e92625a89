//! A platform team's deploy tool, reduced to what proves the libraries embed: it runs each
//! stage of a deploy the way the `dagster-deploy` CLI does, but from its own code, against the
//! cloud client's Dagster+ stand-in (a mockito server answering with the `test-support`
//! answers) and a real `docker-registry` (started as the end-to-end tests start it).
//!
//! The stages, in order: push a base image; read and validate the configuration and open a
//! session (checking the connection); record a build output computed from the registry; build
//! and push the code image natively on the base; turn the session into deploy documents; deploy
//! and wait with per-location results; create a branch deployment. Each step checks what it
//! got, and any surprise ends the program with an error, so `scripts/test.sh` fails.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dagster_deploy_ci_context as ci;
use dagster_deploy_cloud_client::OrgUrl;
use dagster_deploy_cloud_client::test_support::{self, Answer};
use dagster_deploy_registry::test_support::{DOCKER_REGISTRY_BINARY, RegistryServer};
use dagster_deploy_pipeline::branch::{BranchSettings, upsert_branch_deployment};
use dagster_deploy_pipeline::build::{
    BuildSettings, Builder, DepsLayerSettings, NativeBuild, build_and_push,
};
use dagster_deploy_pipeline::build_output::record_image_tag;
use dagster_deploy_pipeline::deploy::WaitSettings;
use dagster_deploy_pipeline::image::push_image;
use dagster_deploy_pipeline::registry::RegistrySettings;
use dagster_deploy_pipeline::start::{DeploymentType, StartPlan, StartSettings};
use dagster_deploy_pipeline::{
    ConfigSource, Event, Silent, deploy_and_wait, load_config, plan_deploy,
};
use dagster_deploy_registry::{ImageRef, ImageSource, PlatformSelection};
use sha2::{Digest, Sha256};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Fails the program with `message` unless `condition` holds.
fn check(condition: bool, message: impl Into<String>) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(message.into().into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let registry = RegistryServer::try_start(Path::new(DOCKER_REGISTRY_BINARY), None)?;
    let host = registry.host();
    let work = tempfile::tempdir()?;

    // A base image with "Python" in it, pushed from an OCI layout with the image stage.
    let layout = work.path().join("base-layout");
    write_oci_layout(&layout, "deps")?;
    let base = ImageRef::parse(&format!("{host}/platform/base:deps"))?;
    let source: ImageSource = format!("oci:{}:deps", layout.display()).parse()?;
    let pushed = push_image(
        &source,
        &base,
        &PlatformSelection::All,
        &RegistrySettings::default(),
        &Silent,
    )
    .await?;
    check(
        pushed.digest.starts_with("sha256:"),
        format!("push digest {}", pushed.digest),
    )?;

    // A project in a git checkout, with one location built from it.
    let project = work.path().join("project");
    std::fs::create_dir_all(project.join("sales"))?;
    std::fs::write(project.join("sales/__init__.py"), "defs = None\n")?;
    std::fs::write(
        project.join("dagster_cloud.yaml"),
        format!(
            "locations:\n  - location_name: sales\n    code_source:\n      package_name: sales\n    build:\n      directory: .\n      registry: {host}/platform/sales\n"
        ),
    )?;
    git(&project, &["init", "-q", "-b", "feature-x"])?;
    git(&project, &["config", "user.email", "ci@example.com"])?;
    git(&project, &["config", "user.name", "CI"])?;
    git(
        &project,
        &[
            "remote",
            "add",
            "origin",
            "https://github.com/acme/data.git",
        ],
    )?;
    git(&project, &["add", "-A"])?;
    git(&project, &["commit", "-q", "-m", "sales"])?;

    // The Dagster+ stand-in.
    let mut server = test_support::mockito::Server::new_async().await;
    let prod = test_support::deployment_path("prod");
    for answer in [
        Answer::agents(&["RUNNING"]),
        Answer::deploy_locations(&["sales"]),
    ] {
        answer.mock(&mut server, &prod).create_async().await;
    }
    // A new location: absent before the deploy (the deploy stage asks once), then seen loading,
    // then loaded, as a real deploy is.
    let absent = Answer::locations(Vec::new()).body().to_string();
    let loading = Answer::locations(vec![test_support::location_entry("sales", "LOADING", None)])
        .body()
        .to_string();
    let loaded = Answer::locations(vec![test_support::location_entry("sales", "LOADED", None)])
        .body()
        .to_string();
    let polls = AtomicUsize::new(0);
    Answer::locations(Vec::new())
        .mock(&mut server, &prod)
        .with_body_from_request(move |_| {
            let body = match polls.fetch_add(1, Ordering::SeqCst) {
                0 => &absent,
                1 => &loading,
                _ => &loaded,
            };
            body.clone().into_bytes()
        })
        .create_async()
        .await;
    for answer in [
        Answer::organization_settings(serde_json::json!({})),
        Answer::branch_deployment(7, "feature-x"),
    ] {
        answer
            .mock(&mut server, test_support::ORGANIZATION_PATH)
            .create_async()
            .await;
    }
    let client = test_support::client(&server, "user:platform-tool");

    // Open a session: configuration, CI context (no CI variables: a local checkout), the
    // connection check, one state file per location.
    let statedir = work.path().join("state");
    let config = load_config(&ConfigSource::project(&project), Some(&statedir))?;
    check(config.location_names() == ["sales"], "configured locations")?;
    let settings = StartSettings {
        statedir: statedir.clone(),
        location_names: Vec::new(),
        deployment: "prod".to_owned(),
        organization_url: OrgUrl::parse(&server.url())?,
        deployment_type: Some(DeploymentType::Full),
        guess_deployment_type: true,
        keep_other_locations: false,
        git_url: None,
        commit_hash: None,
        status_url: None,
        snapshot_base_condition: None,
        skip_validation: false,
        tool_version: "platform-tool".to_owned(),
    };
    let no_env = |_: &str| None;
    let connected = Mutex::new(false);
    let progress = |event: &Event<'_>| {
        if matches!(event, Event::Connected { .. }) {
            *connected.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
    };
    let plan = StartPlan::new(config, settings, &no_env, &progress)?;
    check(plan.needs_client(), "a connection check needs a client")?;
    let started = plan.open(Some(&client), &progress).await?;
    check(
        *connected.lock().unwrap_or_else(|e| e.into_inner()),
        "connected",
    )?;
    check(started.locations == ["sales"], "session locations")?;
    let session = started.session;

    // Record an image built elsewhere: `<registry>:<tag>`.
    let recorded = record_image_tag(&session, &[], "v1")?;
    check(
        recorded == [("sales".to_owned(), format!("{host}/platform/sales:v1"))],
        format!("recorded {recorded:?}"),
    )?;

    // Build and push natively on the base image, then record the image.
    let build = BuildSettings {
        tag: None,
        builder: Builder::Native(NativeBuild {
            base: base.clone(),
            // A project with a uv.lock gets a dependency layer built by uv; this one has none,
            // so the base image holds the dependencies.
            deps: DepsLayerSettings::new(std::env::temp_dir().join("platform-tool-deps-cache")),
            platform: "linux/amd64".parse()?,
            workdir: "/opt/dagster/app".to_owned(),
            source_date_epoch: None,
            registry: RegistrySettings::default(),
        }),
    };
    let built = build_and_push(&session, &[], &build, &Silent).await?;
    let image = match built.as_slice() {
        [(name, image)] if name == "sales" => image.clone(),
        other => return Err(format!("built {other:?}").into()),
    };
    check(
        image.starts_with(&format!("{host}/platform/sales:")),
        format!("built image {image}"),
    )?;

    // The deploy documents, from the session and its configuration.
    let deploy = plan_deploy(&session, &[], &Silent)?.ok_or("nothing selected")?;
    let document = &deploy.documents[0];
    check(
        document["location_name"] == "sales"
            && document["image"] == image.as_str()
            && document["code_source"]["package_name"] == "sales",
        format!("document {document}"),
    )?;

    // Deploy and wait; each location's result is recorded in the session.
    let wait = WaitSettings {
        load_timeout: Duration::from_secs(30),
        agent_heartbeat_timeout: Some(Duration::from_secs(30)),
    };
    let report = deploy_and_wait(
        &session,
        &deploy,
        &client,
        &wait,
        std::future::pending(),
        &Silent,
    )
    .await?;
    check(report.succeeded(), format!("deploy {report:?}"))?;
    check(report.names() == ["sales"], "deployed locations")?;

    // A branch deployment for the checked-out branch.
    let ci_context = ci::detect(&no_env, &project)?;
    let branch = BranchSettings {
        base_deployment: Some("prod".to_owned()),
        ..BranchSettings::default()
    };
    let name = upsert_branch_deployment(&client, &ci_context, &project, &branch).await?;
    check(name == "feature-x", format!("branch deployment {name}"))?;

    println!("platform-tool: every stage ran ({image} deployed to prod, branch {name})");
    Ok(())
}

fn git(dir: &Path, arguments: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(arguments)
        .status()?;
    check(status.success(), format!("git {}", arguments.join(" ")))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes an OCI image layout holding one single-layer linux/amd64 image tagged `tag`.
fn write_oci_layout(dir: &Path, tag: &str) -> Result<()> {
    let python: &[u8] = b"#!/bin/sh\necho python\n";
    let mut tar_bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tar_bytes);
        let mut header = tar::Header::new_gnu();
        header.set_size(python.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, "usr/local/bin/python", python)?;
        builder.finish()?;
    }
    let diff_id = sha256_hex(&tar_bytes);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar_bytes)?;
    let layer = encoder.finish()?;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    }))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha256_hex(&layer)), "size": layer.len()}],
    }))?;
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    for blob in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(sha256_hex(blob)), blob)?;
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(())
}
