#!/bin/sh
# Installs one pinned dagster-deploy release archive, checked against its SHA-256 checksum, with
# nothing but what a bare CI image has: a POSIX shell, curl or wget, tar with gzip, and
# sha256sum (or shasum). The GitHub Action (action.yml) runs this file; the GitLab CI file that
# `dagster-deploy configure` writes embeds it.
#
#   DAGSTER_DEPLOY_VERSION       the version to install, e.g. 0.1.0 (required)
#   DAGSTER_DEPLOY_SHA256        the archive's expected SHA-256; without it, the checksum file
#                                published next to the archive is used
#   DAGSTER_DEPLOY_DOWNLOAD_URL  where the archives are (a mirror, or a local server in tests);
#                                default: the GitHub release of DAGSTER_DEPLOY_VERSION
#   DAGSTER_DEPLOY_INSTALL_DIR   where the binary goes; default: $HOME/.dagster-deploy/bin
#
# Its only output on stdout is the installed binary's path; progress and errors go to stderr.
set -eu

# The release host, as named in the workspace Cargo.toml's `repository`.
repository="https://github.com/dagster-deploy/dagster-deploy"
version="${DAGSTER_DEPLOY_VERSION:?set DAGSTER_DEPLOY_VERSION to the version to install, e.g. 0.1.0}"
version="${version#v}"
base="${DAGSTER_DEPLOY_DOWNLOAD_URL:-$repository/releases/download/v$version}"
base="${base%/}"
install_dir="${DAGSTER_DEPLOY_INSTALL_DIR:-${HOME:?set HOME or DAGSTER_DEPLOY_INSTALL_DIR}/.dagster-deploy/bin}"

case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *)
    echo "dagster-deploy: no release archive for $(uname -m); build it with cargo install --locked --git $repository dagster-deploy" >&2
    exit 1
    ;;
esac
case "$(uname -s)" in
  # The Linux binary is static: the same archive runs on glibc and musl (Alpine) systems.
  Linux) target="$arch-unknown-linux-gnu" ;;
  Darwin) target="$arch-apple-darwin" ;;
  *)
    echo "dagster-deploy: no release archive for $(uname -s)" >&2
    exit 1
    ;;
esac
archive="dagster-deploy-$target.tar.gz"

download() {
  if command -v curl >/dev/null 2>&1; then
    curl --fail --silent --show-error --location --retry 3 --output "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    echo "dagster-deploy: neither curl nor wget is installed" >&2
    return 1
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "dagster-deploy: downloading $base/$archive" >&2
download "$base/$archive" "$work/$archive" || {
  echo "dagster-deploy: cannot download $base/$archive (is $version a released version?)" >&2
  exit 1
}
expected="${DAGSTER_DEPLOY_SHA256:-}"
if [ -z "$expected" ]; then
  download "$base/$archive.sha256" "$work/$archive.sha256" || {
    echo "dagster-deploy: cannot download the checksum $base/$archive.sha256" >&2
    exit 1
  }
  expected="$(cut -d ' ' -f 1 <"$work/$archive.sha256")"
fi
expected="$(printf '%s' "$expected" | tr 'A-F' 'a-f')"
actual="$(sha256_of "$work/$archive")"
if [ "$actual" != "$expected" ]; then
  echo "dagster-deploy: $archive has SHA-256 $actual, expected $expected: not installing it" >&2
  exit 1
fi
tar -xzf "$work/$archive" -C "$work"
mkdir -p "$install_dir"
# Copy, then rename: a binary that is running (an earlier install) is replaced, not overwritten.
cp "$work/dagster-deploy-$target/dagster-deploy" "$install_dir/.dagster-deploy.new"
chmod 755 "$install_dir/.dagster-deploy.new"
mv -f "$install_dir/.dagster-deploy.new" "$install_dir/dagster-deploy"
installed="$("$install_dir/dagster-deploy" --version)"
case "$installed" in
  "dagster-deploy $version "*) ;;
  *)
    echo "dagster-deploy: asked for $version, but the archive holds $installed" >&2
    exit 1
    ;;
esac
echo "dagster-deploy: installed $installed" >&2
echo "$install_dir/dagster-deploy"
