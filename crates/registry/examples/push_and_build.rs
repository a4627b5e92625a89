//! Pushes an image and builds a code image on top of it, the two things the crate does, against
//! a real registry: by default a throw-away `docker-registry` on a free loopback port (the
//! `test-support` harness; `apt-get install -y docker-registry`), or the registry given as the
//! first argument (`host[:port]`, logged in through Docker's `config.json`).
//!
//! ```text
//! cargo run -p dagster-deploy-registry --example push_and_build [REGISTRY]
//! ```

#![allow(clippy::print_stdout, reason = "an example reports what it did")]

use std::sync::Arc;

use dagster_deploy_registry::build::{CodeImageSpec, build_code_image};
use dagster_deploy_registry::test_support::{OciLayoutWriter, RegistryServer, random_bytes};
use dagster_deploy_registry::{
    ClientOptions, ImageRef, ImageSource, ProgressEvent, RegistryClient, push_image,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A registry of our own unless one is named; dropping the server stops it.
    let (registry, _server) = match std::env::args().nth(1) {
        Some(registry) => (registry, None),
        None => {
            let server = RegistryServer::start();
            (server.host(), Some(server))
        }
    };

    // Progress arrives through a callback; the embedding program decides what to show.
    let client = RegistryClient::new(ClientOptions {
        progress: Some(Arc::new(|event: &ProgressEvent| {
            if let ProgressEvent::ManifestPushed { reference, digest } = event {
                println!("  manifest {digest} pushed as {reference}");
            }
        })),
        ..ClientOptions::default()
    })?;

    // 1. An OCI layout on disk (any `oci:`, `oci-archive:`, `docker-archive:` source or registry
    //    reference works the same way), pushed byte for byte: the digest is the layout's.
    let work = tempfile::tempdir()?;
    let layout = OciLayoutWriter::new(&work.path().join("layout"))?;
    let image = layout.image(&[random_bytes(64 * 1024)], "amd64")?;
    layout.finish(&[(image, "3.12")])?;
    let source: ImageSource = format!("oci:{}:3.12", layout.dir().display()).parse()?;
    let base = ImageRef::parse(&format!("{registry}/example/base:3.12"))?;
    println!("pushing {source} to {base}");
    let report = push_image(&client, &source, &base).await?;
    println!(
        "  {}: {} blob(s) uploaded, {} already there",
        report.digest, report.blobs_uploaded, report.blobs_skipped
    );

    // 2. A code image: the base plus one reproducible layer of a project directory, pushed
    //    without a Docker daemon; the base layers are mounted, not copied.
    let project = work.path().join("project");
    std::fs::create_dir_all(&project)?;
    std::fs::write(project.join("definitions.py"), "import dagster\n")?;
    let target = ImageRef::parse(&format!("{registry}/example/code"))?;
    let spec = CodeImageSpec::new(base, project, target);
    let built = match build_code_image(&client, &spec).await {
        Ok(built) => built,
        Err(error) => {
            // Errors are data: a message, a kind to branch on, and help kept apart.
            println!("build failed ({:?}): {error}", error.kind());
            if let Some(help) = error.help() {
                println!("help: {help}");
            }
            return Err(error.into());
        }
    };
    println!(
        "built {} ({}): code layer {} bytes, {} base layer(s) mounted",
        built.image, built.digest, built.layer_size, built.base_layers_mounted
    );
    Ok(())
}
