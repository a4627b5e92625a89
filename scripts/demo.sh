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
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# A real OCI registry on a free loopback port.
registry_port=$(free_port)
mkdir -p "$work/registry"
cat > "$work/registry/config.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/registry/data}
http:
  addr: 127.0.0.1:$registry_port
YAML
/usr/bin/docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
registry="127.0.0.1:$registry_port"

# The Dagster+ emulator: agents take a second to load each location.
"$bin/dagster-cloud-emulator" --port 0 --load-time-ms 1000 --token demo-token >"$work/emulator.out" 2>"$work/emulator.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/emulator.out" 2>/dev/null && break
  sleep 0.1
done
emulator=$(sed -n 's/^listening on //p' "$work/emulator.out" | head -1)
[ -n "$emulator" ] || { echo "the emulator did not start:" >&2; cat "$work/emulator.log" >&2; exit 1; }
for _ in $(seq 100); do
  curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
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
