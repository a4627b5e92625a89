//! Builds the dependency layer of a uv project for an unpacked base image and prints where it
//! is, its digest and the environment the image needs.
//!
//! ```text
//! cargo run -p dagster-deploy-pydeps --example build_layer -- PROJECT_DIR BASE_ROOTFS CACHE_DIR
//! ```
//!
//! `BASE_ROOTFS` is a base image's root file system (for example `rootfs/` of `umoci unpack`),
//! taken to be linux/amd64 with the default `PATH`. uv is `$UV`, or `uv` on the `PATH`; set
//! `UV_SYSTEM_CERTS=1` behind a TLS-intercepting proxy.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example shows its result on the terminal"
)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dagster_deploy_pydeps::{
    DepsRequest, ImageFacts, LayerCache, TargetPython, UnpackedRoot, Uv, build_deps_layer,
    find_lock,
};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [project_dir, rootfs, cache_dir] = args.as_slice() else {
        eprintln!("usage: build_layer PROJECT_DIR BASE_ROOTFS CACHE_DIR");
        return ExitCode::from(2);
    };
    match run(project_dir, rootfs, cache_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(help) = error.help() {
                eprintln!("help: {help}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(project_dir: &Path, rootfs: &Path, cache_dir: &Path) -> dagster_deploy_pydeps::Result<()> {
    let Some(project) = find_lock(project_dir)? else {
        println!(
            "{} has no uv.lock: the base image must hold the dependencies",
            project_dir.display()
        );
        return Ok(());
    };
    let facts = ImageFacts {
        architecture: "amd64".to_owned(),
        env: Vec::new(),
    };
    let target = TargetPython::detect(&UnpackedRoot::new(rootfs), &facts)?;
    println!(
        "base: {} (Python {}, {})",
        target.interpreter,
        target.version,
        target.uv_platform()
    );
    let uv = Uv::new(std::env::var_os("UV").unwrap_or_else(|| "uv".into()))?;
    let request = DepsRequest::new(&project, &target);
    let layer = build_deps_layer(
        &uv,
        &request,
        &LayerCache::new(cache_dir),
        &mut |progress| println!("  {progress:?}"),
    )?;
    println!(
        "layer: {} ({} bytes, {} packages, {})\n  {}\n  env: {:?}",
        layer.digest,
        layer.size,
        layer.packages,
        if layer.reused { "reused" } else { "built" },
        layer.blob.display(),
        layer.env
    );
    Ok(())
}
