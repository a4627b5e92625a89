#!/usr/bin/env bash
# Checks the README's two `cargo install` commands: from this checkout (--path) and from a git
# URL (--git, here this clone as a file:// URL, standing in for the GitHub repository). Both use
# the debug profile and the shared target folder, so only the install itself is measured here;
# the release build is tested by scripts/dist-build.sh and the release tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dagster-deploy-target}"
roots="$(mktemp -d)"
trap 'rm -rf "$roots"' EXIT
version="$(cargo metadata --no-deps --format-version 1 --locked |
  sed -n 's/.*"name":"dagster-deploy","version":"\([^"]*\)".*/\1/p')"
check() {
  local printed
  printed="$("$1/bin/dagster-deploy" --version)"
  case "$printed" in
    "dagster-deploy $version (commit "*) echo "check-install: $2 installed $printed" >&2 ;;
    *) echo "check-install: $2 installed something else: $printed" >&2; exit 1 ;;
  esac
}
cargo install --quiet --locked --debug --path crates/cli --root "$roots/path"
check "$roots/path" "cargo install --path crates/cli"
cargo install --quiet --locked --debug --git "file://$PWD" --root "$roots/git" dagster-deploy
check "$roots/git" "cargo install --git"
# `cargo install` moves the binary out of the shared target folder: put the one the end-to-end
# tests run back (a relink only).
cargo build --quiet --locked -p dagster-deploy
