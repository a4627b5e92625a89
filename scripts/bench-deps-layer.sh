#!/usr/bin/env bash
# Benchmarks the dependency layer (crates/pydeps) against its floor, in one run on one machine:
# `uv sync --frozen` of the same lock into a venv on the host, which is what a Docker build's
# dependency step runs, minus Docker. The lock is tests/tests/fixtures/pydeps/dagster-workspace
# (dagster and dagster-cloud, 80-odd packages); the base is the plain Debian + python3 image that
# scripts/pybase.sh caches. Prints a markdown table on stdout; hyperfine's output goes to stderr.
#
#   bash scripts/bench-deps-layer.sh          # about 3 minutes on 2 cores, plus the build
#   DD_BENCH_COLD_RUNS=2 bash scripts/bench-deps-layer.sh
#
# Cases (each run starts from the state named):
#   layer, cold uv cache    empty uv cache, empty layer cache: downloads every wheel
#   layer, warm uv cache    wheels cached, empty layer cache: install, plan, tar and gzip
#   layer, cached rebuild   the layer cache holds the key: `uv export` and a lookup only
#   floor, cold / warm      `uv sync --frozen --no-dev --no-install-workspace` into a fresh venv
#
# Everything is written in a temp dir that is removed on exit; the network is used only to
# download wheels from the package index (cold cases).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
command -v hyperfine >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null
}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
echo "==> building the example in release mode" >&2
cargo build --quiet --locked --release -p dagster-deploy-pydeps --example build_layer
example="$CARGO_TARGET_DIR/release/examples/build_layer"
export UV="${DAGSTER_DEPLOY_TOOLS:-/var/tmp/dagster-deploy-tools}/bin/uv"
# The package index is reached through a proxy whose CA is in the system store.
export UV_SYSTEM_CERTS=1
eval "$(bash scripts/pybase.sh --print-paths)"

work=$(mktemp -d /var/tmp/dagster-deploy-bench-deps.XXXXXX)
trap 'rm -rf "$work"' EXIT
umoci unpack --image "$DAGSTER_DEPLOY_PYBASE_PLAIN:latest" "$work/base" >/dev/null
project="$root/tests/tests/fixtures/pydeps/dagster-workspace/projects/myproj"
python=$(command -v python3)
cold_runs="${DD_BENCH_COLD_RUNS:-3}"
warm_runs="${DD_BENCH_RUNS:-5}"

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

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
means = {}
for name in ("cold", "warm", "cached"):
    for result in json.load(open(f"{work}/{name}.json"))["results"]:
        means[result["command"]] = (result["mean"], result["stddev"] or 0.0)
floor_cold = means["floor, cold uv cache"][0]
floor_warm = means["floor, warm uv cache"][0]
print("| case | mean | ± | vs floor (same cache state) |")
print("| --- | ---: | ---: | ---: |")
for case, floor in (
    ("floor, cold uv cache", floor_cold),
    ("layer, cold uv cache", floor_cold),
    ("floor, warm uv cache", floor_warm),
    ("layer, warm uv cache", floor_warm),
    ("layer, cached rebuild", floor_warm),
):
    mean, stddev = means[case]
    print(f"| {case} | {mean:.3f} s | {stddev:.3f} s | {mean / floor:.2f}x |")
EOF
