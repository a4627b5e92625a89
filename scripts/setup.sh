#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, skipping whatever is
# already there. Safe to run again: the second run does nothing but checks.
#
#   - docker-registry: the real OCI registry the tests start on free loopback ports;
#   - skopeo: the baseline of the push benchmark and a second opinion in tests;
#   - git: real repositories made in temp dirs;
#   - dagster-cloud-cli (PyPI) in a virtualenv: the reference CLI for interop tests;
#   - dagster-dg-cli (PyPI) in a second virtualenv: the reference `dg` for the compatibility tests;
#   - mmdebstrap, and the real Python base images it builds (scripts/pybase.sh, cached in
#     /var/tmp): what the real-Python end-to-end tests and the demo run code servers in;
#   - wget, file, openssl, libc6-dev: the release tests download with both curl and wget,
#     inspect the static binary (`file`, `ldd`), make test certificates, and link glibc
#     statically;
#   - libssl-dev, pkg-config: the `native-tls` backend of the HTTP clients is built and tested
#     too (OpenSSL on Linux);
#   - strace: the crash tests of sessions kill a command at an exact system call (its fault
#     injection), in the middle of the files being put in place;
#   - dist (crates.io cargo-dist), compiled once into /var/tmp/dagster-deploy-tools: it builds
#     the release archives and checks the release workflow;
#   - uv (PyPI), pinned, in its own virtualenv in /var/tmp/dagster-deploy-tools: what the native
#     builder installs a project's locked dependencies with (crates/pydeps).
set -euo pipefail

missing=()
# util-linux (unshare, nsenter, setpriv), mount and tar are what the test agent runs images with.
for pkg in docker-registry skopeo git curl mmdebstrap ca-certificates util-linux mount tar wget file openssl libc6-dev libssl-dev pkg-config strace; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Keep package scripts from starting the registry service on port 5000: the tests start
  # their own registries on free loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    remove_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "${remove_policy:-0}" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

# Whatever started it, the packaged service must not hold port 5000.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
  systemctl disable docker-registry >/dev/null 2>&1 || true
fi
if command -v service >/dev/null 2>&1; then service docker-registry stop >/dev/null 2>&1 || true; fi
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true

# The reference CLI, pinned, in its own virtualenv outside the clone.
REFERENCE_VENV="${DAGSTER_DEPLOY_REFERENCE_VENV:-/var/tmp/dagster-deploy-reference-venv}"
REFERENCE_VERSION="1.13.28"
if ! "$REFERENCE_VENV/bin/dagster-cloud" --version 2>/dev/null | grep -q "$REFERENCE_VERSION"; then
  echo "setup: installing dagster-cloud-cli $REFERENCE_VERSION into $REFERENCE_VENV" >&2
  python3 -m venv "$REFERENCE_VENV"
  "$REFERENCE_VENV/bin/pip" install -q --disable-pip-version-check "dagster-cloud-cli==$REFERENCE_VERSION"
fi

# uv, pinned, in its own virtualenv outside the clone (the wheel's `bin/uv` is the whole program).
TOOLS_ROOT="${DAGSTER_DEPLOY_TOOLS:-/var/tmp/dagster-deploy-tools}"
UV_VERSION="0.13.9"
UV_VENV="$TOOLS_ROOT/uv-$UV_VERSION"
if ! "$UV_VENV/bin/uv" --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
  echo "setup: installing uv $UV_VERSION into $UV_VENV" >&2
  rm -rf "$UV_VENV"
  python3 -m venv "$UV_VENV"
  "$UV_VENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
mkdir -p "$TOOLS_ROOT/bin"
ln -sfn "$UV_VENV/bin/uv" "$TOOLS_ROOT/bin/uv"

# The reference `dg` CLI (dagster-dg-cli, whose release line pins dagster-cloud-cli 1.13.27), pinned,
# in a second virtualenv outside the clone: the compatibility tests run its `dg plus deploy` flow
# side by side with ours. It pulls in dagster itself, so uv installs it (much faster than pip).
REFERENCE_DG_VENV="${DAGSTER_DEPLOY_REFERENCE_DG_VENV:-/var/tmp/dagster-deploy-reference-dg-venv}"
REFERENCE_DG_VERSION="1.13.27"
if ! "$REFERENCE_DG_VENV/bin/dg" --version 2>/dev/null | grep -q "$REFERENCE_DG_VERSION"; then
  echo "setup: installing dagster-dg-cli $REFERENCE_DG_VERSION into $REFERENCE_DG_VENV" >&2
  rm -rf "$REFERENCE_DG_VENV"
  UV_NATIVE_TLS=1 "$TOOLS_ROOT/bin/uv" venv -q --python python3 "$REFERENCE_DG_VENV"
  UV_NATIVE_TLS=1 VIRTUAL_ENV="$REFERENCE_DG_VENV" "$TOOLS_ROOT/bin/uv" pip install -q --no-cache "dagster-dg-cli==$REFERENCE_DG_VERSION"
fi

# Real Python base images (Debian + python3, with and without dagster), built once per machine.
bash "$(dirname "$0")/pybase.sh"

# dist, pinned to the version the release workflow uses (Cargo.toml `cargo-dist-version`). It is
# compiled from crates.io once; the binary is kept outside the clone.
DIST_VERSION="$(sed -n 's/^cargo-dist-version = "\(.*\)"$/\1/p' "$(dirname "$0")/../Cargo.toml")"
if ! "$TOOLS_ROOT/bin/dist" --version 2>/dev/null | grep -qx "cargo-dist $DIST_VERSION"; then
  echo "setup: compiling cargo-dist $DIST_VERSION into $TOOLS_ROOT (once, a few minutes)" >&2
  # Its own target folder, so that the workspace's CARGO_TARGET_DIR is not mixed with it.
  CARGO_TARGET_DIR="$TOOLS_ROOT/target" cargo install --quiet --locked --root "$TOOLS_ROOT" "cargo-dist@$DIST_VERSION"
  rm -rf "$TOOLS_ROOT/target"
fi
