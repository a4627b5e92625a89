#!/usr/bin/env bash
# Builds the real Python base images the end-to-end tests and the demo use, once, and caches
# them as OCI image layouts outside the clone. Called by scripts/setup.sh; does nothing when
# both layouts are already there.
#
#   $DAGSTER_DEPLOY_PYBASE_DAGSTER (default /var/tmp/dagster-deploy-pybase-dagster-<version>-v1)
#       Debian bookworm (minbase) with python3, a user `app` (uid 1000, home /home/app), and a
#       venv at /opt/venv holding `dagster` and
#       `dagster-cloud` at the same version; PATH and VIRTUAL_ENV point at the venv. Two layers:
#       the Debian root file system, then /opt (the venv). The image a Hybrid agent could run.
#   $DAGSTER_DEPLOY_PYBASE_PLAIN (default /var/tmp/dagster-deploy-pybase-plain-v1)
#       The same Debian layer alone: python3 and python3-venv, no dagster, no venv (what a
#       `python:3.x-slim` image is to a project that brings its dependencies in a layer).
#
# Each layout holds one image tagged `latest` (`oci:DIR:latest`). How they are made:
# mmdebstrap writes the root file system from Debian packages; pip runs inside it through
# chroot, with /proc and /dev mounted and the host's CA bundle on a tmpfs (HTTPS here passes a
# proxy whose CA is only in the host's store), so the bundle never lands in the image; layers are
# sorted tars with numeric owners, gzipped without names or timestamps.
#
# Needs root, mmdebstrap, and network access to a Debian mirror and PyPI (setup.sh installs
# mmdebstrap). Takes about two minutes on two cores; the layouts take about 250 MB.
set -euo pipefail

DAGSTER_VERSION="1.13.27"
# Bump when the recipe changes, so machines with an older cache build the new one.
RECIPE="v1"
DAGSTER_DIR="${DAGSTER_DEPLOY_PYBASE_DAGSTER:-/var/tmp/dagster-deploy-pybase-dagster-$DAGSTER_VERSION-$RECIPE}"
PLAIN_DIR="${DAGSTER_DEPLOY_PYBASE_PLAIN:-/var/tmp/dagster-deploy-pybase-plain-$RECIPE}"
MIRROR="${DAGSTER_DEPLOY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"

if [ "${1:-}" = "--print-paths" ]; then
  printf 'DAGSTER_DEPLOY_PYBASE_DAGSTER=%s\nDAGSTER_DEPLOY_PYBASE_PLAIN=%s\n' "$DAGSTER_DIR" "$PLAIN_DIR"
  exit 0
fi
if [ -f "$DAGSTER_DIR/index.json" ] && [ -f "$PLAIN_DIR/index.json" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "pybase: building the Python base images needs root (chroot, mounts)" >&2
  exit 1
fi
for tool in mmdebstrap unshare chroot gzip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "pybase: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 1
  }
done

started=$(date +%s)
work=$(mktemp -d /var/tmp/dagster-deploy-pybase-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "pybase: Debian bookworm with python3 (mmdebstrap)" >&2
# Documentation, man pages and translations are left out, as slim images do.
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='chroot "$1" useradd --create-home --uid 1000 --user-group app' \
  bookworm "$rootfs" "$MIRROR"
# What a container runtime provides (device nodes, /proc, DNS) or what only the build used.
rm -rf "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/run/* "$rootfs"/tmp/* \
  "$rootfs"/var/tmp/* "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/log/apt/* "$rootfs"/var/log/dpkg.log "$rootfs"/etc/resolv.conf

# make_layer DIR OUT MEMBER...: a reproducible gzipped tar of DIR's MEMBERs; sets layer_digest,
# layer_size and layer_diff_id.
make_layer() {
  local dir=$1 out=$2
  shift 2
  tar --sort=name --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$dir" -cf "$out.tar" "$@"
  layer_diff_id="sha256:$(sha256sum "$out.tar" | cut -d' ' -f1)"
  gzip -n -6 "$out.tar"
  mv "$out.tar.gz" "$out"
  layer_digest="sha256:$(sha256sum "$out" | cut -d' ' -f1)"
  layer_size=$(stat -c %s "$out")
}

echo "pybase: the Debian layer" >&2
make_layer "$rootfs" "$work/debian.layer" .
debian_digest=$layer_digest debian_size=$layer_size debian_diff_id=$layer_diff_id

echo "pybase: a venv with dagster-cloud==$DAGSTER_VERSION and dagster==$DAGSTER_VERSION (pip in a chroot)" >&2
# Everything mounted here lives in a private mount namespace and disappears with it, even if
# pip fails. Pinning both packages keeps pip from backtracking to an old dagster-cloud when PyPI
# already has a newer dagster.
: >"$rootfs/etc/resolv.conf"
unshare --mount --propagation private -- /bin/sh -euc '
  root=$1 bundle=$2 version=$3
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o size=16m tmpfs "$root/mnt"
  cp "$bundle" "$root/mnt/ca.crt"
  mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/mnt/ca.crt PIP_CERT=/mnt/ca.crt REQUESTS_CA_BUNDLE=/mnt/ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_PROGRESS_BAR=off \
    /bin/sh -euc "
      python3 -m venv /opt/venv
      /opt/venv/bin/pip install --quiet dagster-cloud==$version dagster==$version
      /opt/venv/bin/dagster --version
    "
' pybase "$rootfs" "$CA_BUNDLE" "$DAGSTER_VERSION"
rm -f "$rootfs/etc/resolv.conf"
if [ -n "$(ls -A "$rootfs/mnt")" ]; then
  echo "pybase: $rootfs/mnt is not empty after the build; refusing to package it" >&2
  exit 1
fi

echo "pybase: the venv layer" >&2
make_layer "$rootfs" "$work/venv.layer" ./opt
venv_digest=$layer_digest venv_size=$layer_size venv_diff_id=$layer_diff_id

# write_blob LAYOUT FILE: copies FILE into the layout's blobs and prints its digest.
write_blob() {
  local dir=$1 file=$2 digest
  digest=$(sha256sum "$file" | cut -d' ' -f1)
  mkdir -p "$dir/blobs/sha256"
  cp "$file" "$dir/blobs/sha256/$digest"
  echo "sha256:$digest"
}

# finish_layout OUT_DIR ENV_JSON DIFF_IDS_JSON HISTORY_JSON LAYERS_JSON LAYER_FILE...: an OCI
# layout holding one image tagged `latest`, staged next to the layers and moved into place last,
# so an interrupted build never leaves a layout that looks finished.
finish_layout() {
  local out=$1 env_json=$2 diff_ids=$3 history=$4 layers=$5
  shift 5
  local stage="$work/layout-$(basename "$out")"
  mkdir -p "$stage/blobs/sha256"
  for file in "$@"; do write_blob "$stage" "$file" >/dev/null; done
  printf '{"architecture":"amd64","os":"linux","config":{"Env":%s,"Cmd":["python3"]},"rootfs":{"type":"layers","diff_ids":%s},"history":%s}' \
    "$env_json" "$diff_ids" "$history" >"$work/config.json"
  local config config_size manifest manifest_size
  config=$(write_blob "$stage" "$work/config.json")
  config_size=$(stat -c %s "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":%s}' \
    "$config" "$config_size" "$layers" >"$work/manifest.json"
  manifest=$(write_blob "$stage" "$work/manifest.json")
  manifest_size=$(stat -c %s "$work/manifest.json")
  printf '{"imageLayoutVersion":"1.0.0"}' >"$stage/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest" "$manifest_size" >"$stage/index.json"
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  mv "$stage" "$out"
}

layer_json() {
  printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}' "$1" "$2"
}
system_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
debian_history='{"created_by":"mmdebstrap --variant=minbase --include=python3,python3-venv bookworm; useradd app"}'

finish_layout "$PLAIN_DIR" \
  "[\"PATH=$system_path\",\"LANG=C.UTF-8\"]" \
  "[\"$debian_diff_id\"]" "[$debian_history]" \
  "[$(layer_json "$debian_digest" "$debian_size")]" \
  "$work/debian.layer"
finish_layout "$DAGSTER_DIR" \
  "[\"PATH=/opt/venv/bin:$system_path\",\"VIRTUAL_ENV=/opt/venv\",\"LANG=C.UTF-8\"]" \
  "[\"$debian_diff_id\",\"$venv_diff_id\"]" \
  "[$debian_history,{\"created_by\":\"python3 -m venv /opt/venv && pip install dagster-cloud==$DAGSTER_VERSION dagster==$DAGSTER_VERSION\"}]" \
  "[$(layer_json "$debian_digest" "$debian_size"),$(layer_json "$venv_digest" "$venv_size")]" \
  "$work/debian.layer" "$work/venv.layer"

echo "pybase: done in $(($(date +%s) - started)) s: $PLAIN_DIR, $DAGSTER_DIR" >&2
