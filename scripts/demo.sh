#!/usr/bin/env bash
# The whole deploy pipeline on this machine: a local Dagster+ emulator whose agent runs the
# deployed images for real, a real OCI registry (Debian's docker-registry), a real Python base
# image, and the example dg workspace in examples/demo-workspace. Run it as root.
#
#   start -> build-and-push --builder native -> deploy (code servers start) -> status
#
# Everything it starts is stopped on exit; everything it writes is in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
echo "==> building dagster-deploy and the emulator" >&2
cargo build --quiet --locked -p dagster-deploy -p dagster-deploy-e2e --bins
bin="$CARGO_TARGET_DIR/debug"

work=$(mktemp -d -t dagster-deploy-demo.XXXXXX)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
cleanup() {
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT

# A real OCI registry on a free loopback port, and the Dagster+ emulator with a real agent: it
# pulls each deployed image, starts its code server the way a Hybrid agent does and reports
# LOADED only if the code loads (or the code server's own error). It needs root (mounts).
start_registry "$work/registry"
start_emulator "$bin/dagster-cloud-emulator" "$work" --real-agent --token demo-token
echo "==> registry at $registry, Dagster+ emulator with a real agent at $emulator" >&2

# The base image: Debian with python3 and a venv holding dagster and dagster-cloud, built from
# Debian packages and PyPI by scripts/pybase.sh (setup.sh ran it) and cached in /var/tmp. It is
# pushed with our own `image push`, so no Docker is needed anywhere.
eval "$(bash scripts/pybase.sh --print-paths)"
echo "==> seeding the base image $registry/demo/base:dagster" >&2
"$bin/dagster-deploy" image push "oci:$DAGSTER_DEPLOY_PYBASE_DAGSTER:latest" "$registry/demo/base:dagster" >/dev/null

# The example workspace, in a git checkout of its own, pointed at the local registry.
project="$work/demo-workspace"
cp -r "$root/examples/demo-workspace" "$project"
sed -i "s#^registry: .*#registry: $registry/demo/code#" "$project/build.yaml"
git -C "$project" init -q -b main
git -C "$project" -c user.name=demo -c user.email=demo@example.com add -A
git -C "$project" -c user.name=demo -c user.email=demo@example.com commit -q -m "demo"

export DAGSTER_CLOUD_URL="$emulator" DAGSTER_CLOUD_ORGANIZATION=demo DAGSTER_CLOUD_API_TOKEN=demo-token
export DAGSTER_BUILD_STATEDIR="$work/state" SOURCE_DATE_EPOCH=0
run() { echo "==> dagster-deploy $*" >&2; "$bin/dagster-deploy" "$@"; }
run start --project-dir "$project" --deployment prod --deployment-type full
run build-and-push --builder native --base-image "$registry/demo/base:dagster"
run deploy --location-load-timeout 300
run status --output-format table
echo "==> demo finished: three locations built without Docker, deployed, and their code servers loaded them" >&2
