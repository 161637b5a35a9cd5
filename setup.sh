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
# tidy.
packages=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libuv1-dev libsqlite3-dev
          lua-cjson lua-busted sqlite3 openssh-server openssh-client iproute2
          graphite-carbon python3-whisper help2man man-db
          chromium fonts-dejavu-core python3 tidy)

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
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"

# The README's example, from an empty directory: it writes .psurvey/ there.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$root/build/bin/psurvey" "$root/examples/readme.lua")
echo "setup.sh: psurvey is built in build/; run ./test.sh next"
