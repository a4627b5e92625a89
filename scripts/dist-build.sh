#!/usr/bin/env bash
# Builds what the release workflow builds for this machine, the way its jobs build it: the
# archive of this machine's target (with the same environment as the release build job, so a
# static binary on Linux) and the global artifacts (shell installer, source tarball, checksums),
# into $CARGO_TARGET_DIR/distrib. The tests unpack and install from there.
#
# Needs `dist` (crates.io cargo-dist), which scripts/setup.sh installs into
# /var/tmp/dagster-deploy-tools; DAGSTER_DEPLOY_DIST names another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
dist="${DAGSTER_DEPLOY_DIST:-/var/tmp/dagster-deploy-tools/bin/dist}"
if [ ! -x "$dist" ]; then
  echo "dist-build: $dist is missing: run scripts/setup.sh (it installs cargo-dist)" >&2
  exit 1
fi
target="$(rustc -vV | sed -n 's/^host: //p')"
# The release build job's environment (.github/build-setup.yml runs the same script).
if [[ "$target" == *-linux-* ]]; then
  while IFS= read -r assignment; do
    export "${assignment?}"
  done < <(bash scripts/release-env.sh)
fi
distrib="$CARGO_TARGET_DIR/distrib"
mkdir -p "$distrib"
rm -f "$distrib"/*-dist-manifest.json
# As in the release workflow, the local build's manifest is kept next to the artifacts, so that
# the global build checksums the archive and the installer knows it. (dist reads every
# *-dist-manifest.json there, so a manifest is only put there once complete.)
manifest="$(mktemp)"
trap 'rm -f "$manifest"' EXIT
"$dist" build --artifacts=local --target="$target" --output-format=json >"$manifest"
mv "$manifest" "$distrib/$target-dist-manifest.json"
unset RUSTFLAGS
"$dist" build --artifacts=global --output-format=json >/dev/null
echo "dist-build: artifacts in $CARGO_TARGET_DIR/distrib" >&2
