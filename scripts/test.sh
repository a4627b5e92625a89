#!/usr/bin/env bash
# Runs every test: unit, integration against a real registry, interop with the reference
# CLI, and end-to-end through the emulator. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_DEPLOY_REFERENCE_CLI="${DAGSTER_DEPLOY_REFERENCE_VENV:-/var/tmp/dagster-deploy-reference-venv}/bin/dagster-cloud"
# The uv that setup.sh installed, and a uv cache kept across runs (the dependency-layer tests
# download wheels only once per machine).
export DAGSTER_DEPLOY_UV="${DAGSTER_DEPLOY_TOOLS:-/var/tmp/dagster-deploy-tools}/bin/uv"
export DAGSTER_DEPLOY_UV_CACHE="${DAGSTER_DEPLOY_UV_CACHE:-/var/tmp/dagster-deploy-uv-cache}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
# Where setup.sh cached the real Python base images (DAGSTER_DEPLOY_PYBASE_DAGSTER, …_PLAIN).
eval "$(bash scripts/pybase.sh --print-paths | sed 's/^/export /')"
# The end-to-end tests drive the real binaries, and the release tests the archive the release
# job would build for this machine (static on Linux), with the installer and checksums.
cargo build --locked -p dagster-deploy -p dagster-deploy-e2e --bins
bash scripts/dist-build.sh
# Every library's examples build, and run: they are the first code an embedder reads.
cargo build --workspace --examples --locked
for example in dagster-deploy-buildconfig:check_config dagster-deploy-statedir:session \
    dagster-deploy-ci-context:detect dagster-deploy-cloud-client:deploy_and_wait \
    dagster-deploy-forge:upsert_comment dagster-deploy-registry:push_and_build; do
    cargo run --quiet --locked -p "${example%%:*}" --example "${example#*:}" >/dev/null
done
# An outside embedder (not a workspace member, its own lock file) depends on the libraries by
# path and runs every stage against the Dagster+ stand-in and a real registry, so a change to
# the public API that would break an embedding tool fails here.
cargo run --quiet --locked --manifest-path examples/platform-tool/Cargo.toml >/dev/null
cargo test --workspace --locked "$@"
# The TLS backends besides the default: the transport's tests (a TLS server trusted through an
# extra root certificate, proxies) run with each, and every network client builds with each.
for tls in rustls-ring native-tls; do
  cargo test --locked -p dagster-deploy-http-policy --no-default-features --features "$tls"
  cargo check --locked -p dagster-deploy-registry -p dagster-deploy-cloud-client -p dagster-deploy-forge --no-default-features --features "$tls"
done
