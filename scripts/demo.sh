#!/usr/bin/env bash
# The whole deploy pipeline on this machine: a local Dagster+ emulator, a real OCI registry
# (Debian's docker-registry), and the example dg workspace in examples/demo-workspace.
#
#   start -> build-and-push --builder native -> deploy -> status
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

# A real OCI registry on a free loopback port, and the Dagster+ emulator: agents take a second
# to load each location.
start_registry "$work/registry"
start_emulator "$bin/dagster-cloud-emulator" "$work" --load-time-ms 1000 --token demo-token
echo "==> registry at $registry, Dagster+ emulator at $emulator" >&2

# A base image that "holds the dependencies": made here as an OCI layout, pushed with our own
# `image push`, so no Docker is needed anywhere.
base="$work/base"
mkdir -p "$base/rootfs/usr/local/bin" "$base/layout/blobs/sha256"
printf '#!/bin/sh\necho "Python 3.12 (demo stand-in)"\n' > "$base/rootfs/usr/local/bin/python"
chmod 755 "$base/rootfs/usr/local/bin/python"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$base/rootfs" -cf "$base/layer.tar" .
diff_id=$(sha256sum "$base/layer.tar" | cut -d' ' -f1)
gzip -n -c "$base/layer.tar" > "$base/layer.tar.gz"
layer=$(sha256sum "$base/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$base/layer.tar.gz")
cp "$base/layer.tar.gz" "$base/layout/blobs/sha256/$layer"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Cmd":["python"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"demo base"}]}' "$diff_id" > "$base/config.json"
config=$(sha256sum "$base/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$base/config.json")
cp "$base/config.json" "$base/layout/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$base/manifest.json"
manifest=$(sha256sum "$base/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$base/manifest.json")
cp "$base/manifest.json" "$base/layout/blobs/sha256/$manifest"
printf '{"imageLayoutVersion":"1.0.0"}' > "$base/layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"deps"}}]}' \
  "$manifest" "$manifest_size" > "$base/layout/index.json"
echo "==> seeding the base image $registry/demo/base:deps" >&2
"$bin/dagster-deploy" image push "oci:$base/layout:deps" "$registry/demo/base:deps" >/dev/null

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
run build-and-push --builder native --base-image "$registry/demo/base:deps"
run deploy --location-load-timeout 120
run status --output-format table
echo "==> demo finished: three locations built without Docker, deployed and loaded" >&2
