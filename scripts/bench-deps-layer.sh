#!/usr/bin/env bash
# Benchmarks the dependency layer against its floor, in one run on one machine: `uv sync
# --frozen` of the same lock into a venv on the host, which is what a Docker build's dependency
# step runs, minus Docker. The lock is tests/tests/fixtures/pydeps/dagster-workspace (dagster and
# dagster-cloud, 80-odd packages); the base is the plain Debian + python3 image that
# scripts/pybase.sh caches. Prints markdown tables on stdout; hyperfine's output goes to stderr.
#
#   bash scripts/bench-deps-layer.sh          # about 6 minutes on 2 cores, plus the build
#   DD_BENCH_COLD_RUNS=2 DD_BENCH_RUNS=3 bash scripts/bench-deps-layer.sh
#
# 1. The library (crates/pydeps, its build_layer example), each run from the state named:
#   layer, cold uv cache    empty uv cache, empty layer cache: downloads every wheel
#   layer, warm uv cache    wheels cached, empty layer cache: install, plan, tar and gzip
#   layer, cached rebuild   the layer cache holds the key: `uv export` and a lookup only
#   floor, cold / warm      `uv sync --frozen --no-dev --no-install-workspace` into a fresh venv
# 2. The pipeline: `build-and-push --builder native` of the fixture's dg project on the plain
#    base, pushed to a local docker-registry (warm uv cache):
#   first dependency layer  empty layer cache, new repository: install, push base, deps, code
#   cached rebuild          unchanged lock and code: nothing is installed or uploaded
#   code-only rebuild       one file changed: only the code layer is uploaded
#   code-only, fresh runner one file changed and an empty layer cache (a new CI machine): the
#                           layer record in the repository names the layer, the base-facts
#                           record the base's Python; nothing installed, no base layer read
#   code-only, no deps layer  the same change with --no-deps-layer: today's code-only rebuild
#
# Everything is written in a temp dir that is removed on exit; the registry binds to 127.0.0.1;
# the network is used only to download wheels from the package index (cold cases).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
command -v hyperfine >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null
}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
echo "==> building the example and the CLI in release mode" >&2
cargo build --quiet --locked --release -p dagster-deploy-pydeps --example build_layer
cargo build --quiet --locked --release -p dagster-deploy --bin dagster-deploy
example="$CARGO_TARGET_DIR/release/examples/build_layer"
dd="$CARGO_TARGET_DIR/release/dagster-deploy"
export UV="${DAGSTER_DEPLOY_TOOLS:-/var/tmp/dagster-deploy-tools}/bin/uv"
# The package index is reached through a proxy whose CA is in the system store.
export UV_SYSTEM_CERTS=1
eval "$(bash scripts/pybase.sh --print-paths)"

work=$(mktemp -d /var/tmp/dagster-deploy-bench-deps.XXXXXX)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
cleanup() {
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT
umoci unpack --image "$DAGSTER_DEPLOY_PYBASE_PLAIN:latest" "$work/base" >/dev/null
fixture="$root/tests/tests/fixtures/pydeps/dagster-workspace"
project="$fixture/projects/myproj"
python=$(command -v python3)
cold_runs="${DD_BENCH_COLD_RUNS:-3}"
warm_runs="${DD_BENCH_RUNS:-5}"

# ---- 1. the library --------------------------------------------------------------------------
# Warm the shared cache once for the warm cases.
export UV_CACHE_DIR="$work/uv-cache"
"$example" "$project" "$work/base/rootfs" "$work/warmup" >/dev/null
"$example" "$project" "$work/base/rootfs" "$work/cached" >/dev/null

layer="$example $project $work/base/rootfs $work/layers"
floor="env UV_PROJECT_ENVIRONMENT=$work/venv $UV sync --quiet --frozen --no-dev --no-install-workspace --python $python --directory $project"
reset="rm -rf $work/layers $work/venv"
cold="rm -rf $work/layers $work/venv $work/cold-cache"

hyperfine --style basic --export-json "$work/cold.json" --runs "$cold_runs" \
  --prepare "$cold" \
  -n "layer, cold uv cache" "env UV_CACHE_DIR=$work/cold-cache $layer" \
  -n "floor, cold uv cache" "env UV_CACHE_DIR=$work/cold-cache $floor" >&2
hyperfine --style basic --export-json "$work/warm.json" --runs "$warm_runs" \
  --prepare "$reset" \
  -n "layer, warm uv cache" "$layer" \
  -n "floor, warm uv cache" "$floor" >&2
hyperfine --style basic --export-json "$work/cached.json" --runs 10 --warmup 1 \
  -n "layer, cached rebuild" "$example $project $work/base/rootfs $work/cached" >&2

# ---- 2. the pipeline -------------------------------------------------------------------------
start_registry "$work/registry"
repos="$work/registry/data/docker/registry/v2/repositories"
echo "==> registry at $registry; pushing the plain base" >&2
"$dd" image push "oci:$DAGSTER_DEPLOY_PYBASE_PLAIN:latest" "$registry/base/plain:latest" >/dev/null
checkout="$work/checkout"
cp -r "$fixture/." "$checkout"
app="$checkout/projects/myproj"
echo "registry: $registry/code/myproj" >"$app/build.yaml"
git -C "$checkout" init -q -b main
git -C "$checkout" -c user.name=bench -c user.email=bench@localhost add -A
git -C "$checkout" -c user.name=bench -c user.email=bench@localhost commit -q -m bench
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" SOURCE_DATE_EPOCH=0
export DAGSTER_CLOUD_URL=http://127.0.0.1:9 DAGSTER_CLOUD_API_TOKEN=unused DAGSTER_CLOUD_ORGANIZATION=acme
export DAGSTER_BUILD_STATEDIR="$work/state" DAGSTER_DEPLOY_UV="$UV"
mkdir -p "$HOME/.config"
"$dd" start --project-dir "$app" --deployment prod --deployment-type full --skip-validation --yes 2>/dev/null
build="$dd build-and-push --builder native --base-image $registry/base/plain:latest --cache-dir $work/dd-cache"
fresh="$dd build-and-push --builder native --base-image $registry/base/plain:latest --cache-dir $work/dd-fresh"
changed="$app/src/myproj/definitions.py"
change="echo \"# change \$(date +%s%N)\" >> $changed"

hyperfine --style basic --export-json "$work/pipeline.json" --runs "$warm_runs" \
  --prepare "rm -rf $repos/code $work/dd-cache" -n "first dependency layer" "$build" >&2
hyperfine --style basic --export-json "$work/cached-build.json" --runs "$warm_runs" --warmup 1 \
  -n "cached rebuild" "$build" >&2
hyperfine --style basic --export-json "$work/code-only.json" --runs "$warm_runs" \
  --prepare "$change" -n "code-only rebuild" "$build" \
  --prepare "$change; rm -rf $work/dd-fresh" -n "code-only, fresh runner" "$fresh" \
  --prepare "$change" -n "code-only, no deps layer" "$build --no-deps-layer" >&2

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
means = {}
for name in ("cold", "warm", "cached", "pipeline", "cached-build", "code-only"):
    for result in json.load(open(f"{work}/{name}.json"))["results"]:
        means[result["command"]] = (result["mean"], result["stddev"] or 0.0)
floor_cold = means["floor, cold uv cache"][0]
floor_warm = means["floor, warm uv cache"][0]
today = means["code-only, no deps layer"][0]
print("| case | mean | ± | vs baseline | baseline |")
print("| --- | ---: | ---: | ---: | --- |")
for case, floor, baseline in (
    ("floor, cold uv cache", floor_cold, "floor, cold"),
    ("layer, cold uv cache", floor_cold, "floor, cold"),
    ("floor, warm uv cache", floor_warm, "floor, warm"),
    ("layer, warm uv cache", floor_warm, "floor, warm"),
    ("layer, cached rebuild", floor_warm, "floor, warm"),
    ("first dependency layer", floor_warm, "floor, warm"),
    ("cached rebuild", floor_warm, "floor, warm"),
    ("code-only, no deps layer", today, "code-only, no deps layer"),
    ("code-only rebuild", today, "code-only, no deps layer"),
    ("code-only, fresh runner", today, "code-only, no deps layer"),
):
    mean, stddev = means[case]
    print(f"| {case} | {mean:.3f} s | {stddev:.3f} s | {mean / floor:.2f}x | {baseline} |")
EOF
