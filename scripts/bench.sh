#!/usr/bin/env bash
# Benchmarks of dagster-deploy against its baselines, in one run on one machine: the reference
# `dagster-cloud ci` (PyPI), `skopeo copy`, and the `tar czf` floor. Prints the machine and a
# markdown table on stdout (hyperfine's own output goes to stderr). See BENCHMARKS.md.
#
#   bash scripts/bench.sh                 # about 20 minutes on 2 cores, plus the build
#   DD_BENCH_RUNS=3 bash scripts/bench.sh # fewer runs of the quick cases (default 5)
#   DD_BENCH_SECTIONS=6,7,8,9             # only these sections (numbered below; default all)
#   DD_BENCH_REFERENCE_CAP=600            # seconds the reference's 2,000-location deploy may take
#   DD_BENCH_RESULTS=DIR                  # also keep hyperfine's JSON exports and RSS reports
#
# Everything it starts binds to 127.0.0.1 and is stopped on exit; everything it writes is in a
# temp dir that is removed on exit. Release binaries are built in $CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# ---- tools -----------------------------------------------------------------------------------
bash scripts/setup.sh # docker-registry, skopeo, git, curl, the reference CLI
need=()
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
echo "==> building release binaries in $CARGO_TARGET_DIR" >&2
cargo build --quiet --locked --release -p dagster-deploy -p dagster-deploy-e2e --bins
export DD_BIN="$CARGO_TARGET_DIR/release/dagster-deploy"
export DD_REFERENCE="${DAGSTER_DEPLOY_REFERENCE_CLI:-/var/tmp/dagster-deploy-reference-venv/bin/dagster-cloud}"
emulator_bin="$CARGO_TARGET_DIR/release/dagster-cloud-emulator"

runs="${DD_BENCH_RUNS:-5}" # the quick cases; the reference pipeline at 100 locations runs 3 times
sections="${DD_BENCH_SECTIONS:-1,2,3,4,5,6,7,8,9}"
# want N: whether section N runs. A section that needs another's inputs makes them itself.
want() { [[ ",${sections// /}," == *",$1,"* ]]; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)

# ---- services --------------------------------------------------------------------------------
work=$(mktemp -d -t dagster-deploy-bench.XXXXXX)
res="$work/results"
mkdir -p "$res" "$work/home/.config"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
cleanup() {
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT

start_registry "$work/registry"
regdata="$work/registry/data"
repos="$regdata/docker/registry/v2/repositories"
token="bench-token-$RANDOM$RANDOM"
start_emulator "$emulator_bin" "$work" --load-time-ms 500 --token "$token"
echo "==> registry at $registry, Dagster+ emulator at $emulator (locations load after 0.5 s)" >&2

# Both CLIs see the same settings and no config file of this machine's user.
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" TMPDIR="$work"
export DAGSTER_CLOUD_URL="$emulator" DAGSTER_CLOUD_API_TOKEN="$token" DAGSTER_CLOUD_ORGANIZATION=acme
export SOURCE_DATE_EPOCH=0
unset DAGSTER_CLOUD_DEPLOYMENT DAGSTER_BUILD_STATEDIR DAGSTER_CLOUD_CLI_CONFIG DG_CLI_CONFIG

# hf NAME RUNS [hyperfine options...] COMMAND: one command, exported as $res/NAME.json.
hf() {
  local name=$1 count=$2
  shift 2
  echo "==> $name" >&2
  hyperfine --style basic --runs "$count" --command-name "$name" --export-json "$res/$name.json" "$@" >&2
  cut -d' ' -f1 /proc/loadavg >>"$work/load" # other work on the machine skews the figures
}
# capped NAME SECONDS COMMAND...: one run of a command that may not finish, stopped after
# SECONDS. Its time is exported as $res/NAME.json, in hyperfine's format; if it is stopped or
# fails, $res/NAME.dnf says so instead, and the report shows that.
capped() {
  local name=$1 cap=$2 started elapsed status=0
  shift 2
  echo "==> $name (once, at most $cap s)" >&2
  started=$(date +%s.%N)
  timeout "$cap" "$@" >"$work/$name.log" 2>&1 || status=$?
  elapsed=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.3f}')" "$started")
  cut -d' ' -f1 /proc/loadavg >>"$work/load"
  if [ "$status" -eq 0 ]; then
    printf '{"results": [{"command": "%s", "median": %s, "times": [%s]}]}\n' "$name" "$elapsed" "$elapsed" >"$res/$name.json"
  elif [ "$status" -eq 124 ]; then
    if [ $((cap % 60)) -eq 0 ]; then
      echo "did not finish within $((cap / 60)) min" >"$res/$name.dnf"
    else
      echo "did not finish within $cap s" >"$res/$name.dnf"
    fi
  else
    echo "failed (exit status $status) after ${elapsed%.*} s" >"$res/$name.dnf"
    tail -5 "$work/$name.log" >&2
  fi
}
rows="$work/rows.tsv"
# row LABEL OURS BASELINE-LABEL BASELINE [OURS-RSS BASELINE-RSS [LOAD-SECONDS]]
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" "${7:-}" >>"$rows"; }
rss() { echo "/usr/bin/time -v -a -o $work/rss-$1"; }
# pipeline_fixture N: the project of N locations that sections 1, 2, 7 and 9 share.
pipeline_fixture() {
  local project="$work/pipeline-$1"
  if [ ! -f "$project/dagster_cloud.yaml" ]; then
    mkdir -p "$project"
    python3 scripts/bench/fixtures.py yaml "$1" "$registry/pipeline" "$project/dagster_cloud.yaml"
  fi
}
# layout_fixture: the 200 MB single-layer OCI layout of sections 3 and 4.
layout="$work/layout"
src="oci:$layout:v1"
layout_fixture() {
  if [ ! -d "$layout" ]; then
    echo "==> writing a 200 MB single-layer OCI layout" >&2
    python3 scripts/bench/fixtures.py layout "$layout" 200
  fi
}
# session_with_images PROJECT STATEDIR: our session of PROJECT with every image recorded (tag v1).
session_with_images() {
  DAGSTER_BUILD_STATEDIR="$2" "$DD_BIN" start --dagster-cloud-yaml "$1/dagster_cloud.yaml" \
    --project-dir "$1" --deployment prod --deployment-type full --skip-validation --yes 2>/dev/null
  "$DD_BIN" set-build-output --statedir "$2" --image-tag v1 2>/dev/null
}

# ---- 1. the whole pipeline: start, set-build-output per location, deploy ---------------------
if want 1; then
  for n in 1 10 100; do
    project="$work/pipeline-$n"
    pipeline_fixture "$n"
    slow=$runs
    [ "$n" -eq 100 ] && slow=3
    hf "pipeline-ours-$n" "$runs" --warmup 1 \
      "bash $root/scripts/bench/pipeline.sh ours $project $work/state-ours-$n $n"
    hf "pipeline-reference-$n" "$slow" \
      "bash $root/scripts/bench/pipeline.sh reference $project $work/state-reference-$n $n"
    row "pipeline, $n location$([ "$n" -gt 1 ] && echo s)" "pipeline-ours-$n" \
      "dagster-cloud ci" "pipeline-reference-$n" "" ""
  done
fi

# ---- 2. start-up and status on 100 locations ------------------------------------------------
if want 2; then
  hf version-ours 20 --warmup 3 -N "$DD_BIN --version"
  hf version-reference "$runs" --warmup 1 -N "$DD_REFERENCE --version"
  row "CLI start-up (\`--version\`)" version-ours "dagster-cloud --version" version-reference "" ""
  # Both read the session our pipeline left (the state files are byte-compatible).
  if [ ! -d "$work/state-ours-100" ]; then
    pipeline_fixture 100
    bash scripts/bench/pipeline.sh ours "$work/pipeline-100" "$work/state-ours-100" 100 2>/dev/null
  fi
  hf status-ours 20 --warmup 3 -N "$DD_BIN status --statedir $work/state-ours-100"
  hf status-reference "$runs" --warmup 1 -N "$DD_REFERENCE ci status --statedir $work/state-ours-100"
  row "\`status\`, 100 locations" status-ours "dagster-cloud ci status" status-reference "" ""
fi

# ---- 3. image push of 200 MB: first push and re-push ----------------------------------------
if want 3; then
  layout_fixture
  # First push: the repository is removed before each run, so every byte goes over the wire.
  hf push-first-ours "$runs" --prepare "rm -rf $repos/first" \
    "$(rss push-first-ours) $DD_BIN image push $src $registry/first/app:v1"
  hf push-first-skopeo "$runs" --prepare "rm -rf $repos/first" \
    "$(rss push-first-skopeo) skopeo copy --quiet --dest-tls-verify=false $src docker://$registry/first/app:v1"
  # Re-push: the same image to a repository that already has it (the warm-up pushes it).
  hf push-again-ours "$runs" --warmup 1 \
    "$(rss push-again-ours) $DD_BIN image push $src $registry/again-ours/app:v1"
  hf push-again-skopeo "$runs" --warmup 1 \
    "$(rss push-again-skopeo) skopeo copy --quiet --dest-tls-verify=false $src docker://$registry/again-skopeo/app:v1"
  row "image push 200 MB, first push" push-first-ours "skopeo copy" push-first-skopeo \
    "$work/rss-push-first-ours" "$work/rss-push-first-skopeo"
  row "image push 200 MB, re-push" push-again-ours "skopeo copy" push-again-skopeo \
    "$work/rss-push-again-ours" "$work/rss-push-again-skopeo"
fi

# ---- 4. native code-image build: 2,000 files / 50 MB onto a 200 MB base ---------------------
if want 4; then
  layout_fixture
  echo "==> seeding the 200 MB base image and writing a 2,000-file / 50 MB project" >&2
  "$DD_BIN" image push "$src" "$registry/bench/base:deps" >/dev/null
  project="$work/build-project"
  python3 scripts/bench/fixtures.py project "$project" 2000 50 "$registry/build/code"
  DAGSTER_BUILD_STATEDIR="$work/state-build" "$DD_BIN" start --dagster-cloud-yaml "$project/dagster_cloud.yaml" \
    --project-dir "$project" --deployment prod --deployment-type full 2>/dev/null
  build="$DD_BIN build-and-push --statedir $work/state-build --builder native --base-image $registry/bench/base:deps"
  changed="$project/src/pkg_00/module_0000.py"
  hf build-first "$runs" --prepare "rm -rf $repos/build" "$(rss build-first) $build"
  hf build-change "$runs" --prepare "echo \"# change \$(date +%s%N)\" >> $changed" "$(rss build-change) $build"
  hf build-unchanged "$runs" --warmup 1 "$(rss build-unchanged) $build"
  # The same content under a new tag each run: the image is found by its content tag and re-tagged.
  hf build-retag "$runs" --warmup 1 "$(rss build-retag) $build --tag retag-\$(date +%s%N)"
  hf tar-floor "$runs" --warmup 1 "$(rss tar-floor) tar czf $work/floor.tar.gz -C $project ."
  row "native build, first push (new repository)" build-first "\`tar czf\` floor" tar-floor \
    "$work/rss-build-first" "$work/rss-tar-floor"
  row "native rebuild after a code-only change" build-change "\`tar czf\` floor" tar-floor \
    "$work/rss-build-change" "$work/rss-tar-floor"
  row "native rebuild, nothing changed" build-unchanged "\`tar czf\` floor" tar-floor \
    "$work/rss-build-unchanged" "$work/rss-tar-floor"
  row "native rebuild, nothing changed, new \`--tag\`" build-retag "\`tar czf\` floor" tar-floor \
    "$work/rss-build-retag" "$work/rss-tar-floor"
fi

# ---- 5. config validation of 5,000 locations ------------------------------------------------
if want 5; then
  project="$work/check-5000"
  mkdir -p "$project"
  python3 scripts/bench/fixtures.py yaml 5000 "$registry/check" "$project/dagster_cloud.yaml"
  hf check-ours "$runs" --warmup 1 -N \
    "$DD_BIN check --offline --dagster-cloud-yaml $project/dagster_cloud.yaml --project-dir $project"
  hf check-reference "$runs" --warmup 1 -N \
    "$DD_REFERENCE ci check --dagster-cloud-connect-check skip --project-dir $project"
  row "config check, 5,000 locations" check-ours "dagster-cloud ci check" check-reference "" ""
fi

# ---- 6. monorepo scale: a session of 2,000 locations -----------------------------------------
if want 6; then
  project="$work/scale-2000"
  mkdir -p "$project"
  python3 scripts/bench/fixtures.py yaml 2000 "$registry/scale" "$project/dagster_cloud.yaml"
  big_ours="$work/state-2000-ours" big_reference="$work/state-2000-reference"
  hf start-2000-ours "$runs" --warmup 1 \
    "$(rss start-2000-ours) $DD_BIN start --statedir $big_ours --dagster-cloud-yaml $project/dagster_cloud.yaml --project-dir $project --deployment prod --deployment-type full --skip-validation --yes"
  hf start-2000-reference 3 \
    "$(rss start-2000-reference) $DD_REFERENCE ci init --statedir $big_reference --project-dir $project --organization acme --deployment prod"
  row "\`start\`, 2,000 locations" start-2000-ours "dagster-cloud ci init" start-2000-reference \
    "$work/rss-start-2000-ours" "$work/rss-start-2000-reference"
  # Every location at once, in one process (a new tag each run, so every file is rewritten).
  hf sbo-2000-ours "$runs" --warmup 1 \
    "$(rss sbo-2000-ours) $DD_BIN set-build-output --statedir $big_ours --image-tag t-\$(date +%s%N)"
  # The reference parses the whole dagster_cloud.yaml once per location (minutes at this
  # size): it runs once, with the same time limit as its 2,000-location deploy.
  capped sbo-2000-reference "${DD_BENCH_REFERENCE_CAP:-600}" \
    "$DD_REFERENCE" ci set-build-output --statedir "$big_reference" --image-tag "t-$(date +%s%N)"
  row "\`set-build-output\`, all of 2,000 locations" sbo-2000-ours "dagster-cloud ci set-build-output" sbo-2000-reference \
    "$work/rss-sbo-2000-ours" ""
  hf status-2000-ours 20 --warmup 3 "$(rss status-2000-ours) $DD_BIN status --statedir $big_ours"
  hf status-2000-reference 3 "$(rss status-2000-reference) $DD_REFERENCE ci status --statedir $big_ours"
  row "\`status\`, 2,000 locations" status-2000-ours "dagster-cloud ci status" status-2000-reference \
    "$work/rss-status-2000-ours" "$work/rss-status-2000-reference"
  # The same three at 100 locations: memory beyond the session's own size should not grow.
  small="$work/scale-100"
  mkdir -p "$small"
  python3 scripts/bench/fixtures.py yaml 100 "$registry/scale" "$small/dagster_cloud.yaml"
  hf start-100 10 --warmup 1 \
    "$(rss start-100) $DD_BIN start --statedir $work/state-100 --dagster-cloud-yaml $small/dagster_cloud.yaml --project-dir $small --deployment prod --deployment-type full --skip-validation --yes"
  row "\`start\`, 100 locations (memory baseline)" start-100 "\`start\`, 2,000 locations" start-2000-ours \
    "$work/rss-start-100" "$work/rss-start-2000-ours"
fi

# ---- 7. deploy 100 locations of which one changed, with and without --skip-unchanged --------
if want 7; then
  pipeline_fixture 100 # the project of section 1; its images are deployed at tag v1 here
  template="$work/state-changed-template"
  session_with_images "$work/pipeline-100" "$template"
  cp -a "$template" "$work/state-changed-seed"
  "$DD_BIN" deploy --statedir "$work/state-changed-seed" 2>/dev/null # the deployment runs v1 everywhere
  # Each run: a fresh copy of the session where loc-0042 has a new image.
  changed_prepare="rm -rf $work/state-changed && cp -a $template $work/state-changed && $DD_BIN set-build-output --statedir $work/state-changed --location-name loc-0042 --image-tag v2-\$(date +%s%N) 2>/dev/null"
  hf changed-skip-ours "$runs" --prepare "$changed_prepare" \
    "$DD_BIN deploy --statedir $work/state-changed --skip-unchanged"
  hf changed-all-ours "$runs" --prepare "$changed_prepare" \
    "$DD_BIN deploy --statedir $work/state-changed"
  hf changed-reference 3 --prepare "$changed_prepare" \
    "$DD_REFERENCE ci deploy --statedir $work/state-changed"
  row "deploy 100 locations, one changed, \`--skip-unchanged\`" changed-skip-ours "dagster-cloud ci deploy (sends all)" changed-reference "" ""
  row "deploy 100 locations, one changed, all sent" changed-all-ours "dagster-cloud ci deploy (sends all)" changed-reference "" ""
  row "deploy 100 locations, one changed, \`--skip-unchanged\`" changed-skip-ours "our deploy, all sent" changed-all-ours "" ""
fi

# ---- 8. deploy 2,000 locations: accepted -> every location seen loaded (0.1 s load) ----------
if want 8; then
  load_ms=100
  main_emulator="$emulator"
  start_emulator "$emulator_bin" "$work/emulator-fast" --load-time-ms "$load_ms" --token "$token"
  export DAGSTER_CLOUD_URL="$emulator"
  pipeline_fixture 2000
  template="$work/state-deploy-2000-template"
  session_with_images "$work/pipeline-2000" "$template"
  # Each run deploys a fresh copy of the same session (every location gets a history entry).
  deploy_prepare="rm -rf $work/state-deploy-2000 && cp -a $template $work/state-deploy-2000"
  hf deploy-2000-ours "$runs" --prepare "$deploy_prepare" \
    "$(rss deploy-2000-ours) $DD_BIN deploy --statedir $work/state-deploy-2000"
  # The reference runs once, with a time limit: it polls every location every 3 s, and at this
  # size it has taken minutes (see BENCHMARKS.md).
  cap="${DD_BENCH_REFERENCE_CAP:-600}"
  eval "$deploy_prepare"
  capped deploy-2000-reference "$cap" "$DD_REFERENCE" ci deploy --statedir "$work/state-deploy-2000"
  row "deploy, 2,000 locations (0.1 s load)" deploy-2000-ours "dagster-cloud ci deploy" deploy-2000-reference \
    "$work/rss-deploy-2000-ours" "" 0.1
  export DAGSTER_CLOUD_URL="$main_emulator"
  emulator="$main_emulator"
fi

# ---- 9. deploy 10 locations: accepted -> every location seen loaded (0.5 s load) -------------
if want 9; then
  pipeline_fixture 10
  template="$work/state-deploy-10-template"
  session_with_images "$work/pipeline-10" "$template"
  deploy_prepare="rm -rf $work/state-deploy-10 && cp -a $template $work/state-deploy-10"
  hf deploy-10-ours 10 --prepare "$deploy_prepare" "$DD_BIN deploy --statedir $work/state-deploy-10"
  hf deploy-10-reference 3 --prepare "$deploy_prepare" \
    "$DD_REFERENCE ci deploy --statedir $work/state-deploy-10"
  row "deploy, 10 locations (0.5 s load)" deploy-10-ours "dagster-cloud ci deploy" deploy-10-reference "" "" 0.5
fi

# ---- the report ------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
load_seen=$(sort -n "$work/load" | sed -n '1p;$p' | paste -sd '-' | sed 's/-/–/')
echo "- Machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -sr)."
echo "- Load average (1/5/15 min): $load_start at the first benchmark, $load_end at the end; 1-min load after each benchmark $load_seen."
echo "- $("$DD_BIN" --version) (release build) vs $("$DD_REFERENCE" --version 2>&1 | tail -1), $(skopeo --version), $(tar --version | head -1), $(hyperfine --version)."
echo "- Wall time of this run: $(($(date +%s) - started)) s. \"faster\"/\"slower\" compare medians."
echo
python3 scripts/bench/report.py "$rows" "$res"
if [ -n "${DD_BENCH_RESULTS:-}" ]; then # keep hyperfine's JSON and the RSS reports
  mkdir -p "$DD_BENCH_RESULTS"
  cp "$res"/* "$work"/rss-* "$rows" "$work/load" "$DD_BENCH_RESULTS/"
fi
