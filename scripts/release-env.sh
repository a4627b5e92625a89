#!/usr/bin/env bash
# Prints the environment of a Linux release build as NAME=value lines, for "$GITHUB_ENV" in the
# release workflow (.github/build-setup.yml) and for `export` in scripts/dist-build.sh, so both
# build the same binary.
#
# glibc with crt-static, not musl: rustup cannot add the musl standard library on every machine
# that builds releases (it needs a download), while glibc's static libraries (libc6-dev) come
# with the C toolchain every Linux runner has. The result has no dynamic dependencies at all.
# What glibc cannot do statically is load NSS modules, which getaddrinfo needs; the HTTP client
# therefore resolves names with hickory-dns (reqwest's `hickory-dns` feature), which reads
# /etc/hosts and /etc/resolv.conf itself.
#
# The getrandom crate looks glibc's getrandom() up with dlsym, which finds nothing in a static
# binary, and then falls back to reading /dev/urandom, which a bare container or chroot may not
# have: `getrandom_backend="linux_getrandom"` makes it call getrandom() directly (Linux 3.17+).
#
# dist sets RUSTFLAGS for each build and passes --target, so these flags reach our code and
# its dependencies but not build scripts or proc-macros, which must stay dynamic.
set -euo pipefail
echo 'RUSTFLAGS=-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"'
