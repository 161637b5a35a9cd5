#!/usr/bin/env bash
# Quick start, step 1: installs the Debian 12 packages psurvey needs to build
# and test, builds it into build/ (CMake, Release), and runs the README's
# example with the freshly built program. Safe to run again.
#
#   ./setup.sh            then ./test.sh
#
# Installing packages needs root (or sudo); when every package is already
# there, apt-get is not run at all.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

# Build: compiler, CMake, Lua 5.4, libuv and SQLite (shared and static),
# and help2man for the man page (made from --help).
# Test: busted, cjson (used by the specs), the sqlite3 shell, OpenSSH and
# iproute2 for the ssh backend's specs (a real sshd on loopback and in
# network namespaces), and Graphite's carbon-cache and whisper for the
# carbon specs (a private carbon on loopback; no service is started), and
# man, which renders the man page in its spec. The report's specs open it
# in headless Chromium (with a font: without one, text vanishes from the
# screenshots), read the screenshots with python3, and check the HTML with
# tidy. The Slurm specs start a private single-node cluster (munged,
# slurmctld, slurmd) in a temporary directory.
packages=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libuv1-dev libsqlite3-dev
          lua-cjson lua-busted sqlite3 openssh-server openssh-client iproute2
          graphite-carbon python3-whisper help2man man-db
          chromium fonts-dejavu-core python3 tidy
          slurm-wlm slurmctld slurmd slurm-client munge)

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  # graphite-carbon asks whether a purge deletes its data: no.
  echo "graphite-carbon graphite-carbon/postrm_remove_databases boolean false" |
    "${sudo[@]}" debconf-set-selections
  # The Slurm and munge packages would start their daemons: no service is
  # started while they install (a policy-rc.d of our own, removed after).
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ -n "$own_policy" ]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"

# The README's example, from an empty directory: it writes .psurvey/ there.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$root/build/bin/psurvey" "$root/examples/readme.lua")
echo "setup.sh: psurvey is built in build/; run ./test.sh next"
