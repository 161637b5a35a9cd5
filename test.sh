#!/usr/bin/env bash
# Quick start, step 2: runs the whole spec suite with busted under Lua 5.4,
# against the build tree made by ./setup.sh. Arguments go to busted
# (./test.sh spec/api, ./test.sh --tags=ssh, ./test.sh -o TAP).
#
#   BUILD_DIR=build-asan ./test.sh   tests another build tree, such as the
#                                    sanitizer build (cmake -DPSURVEY_SANITIZE=ON)
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac
export BUILD_DIR                          # read by .busted: cpath $BUILD_DIR/lib/?.so
export PSURVEY_BIN=$BUILD_DIR/bin/psurvey  # the program the specs run, and the workers
core=$BUILD_DIR/lib/psurvey/core.so
if [ ! -x "$PSURVEY_BIN" ] || [ ! -f "$core" ]; then
  echo "test.sh: no psurvey build in $BUILD_DIR: run ./setup.sh first" >&2
  exit 1
fi

# A sanitizer build's core.so is loaded into lua5.4, which is not built with
# ASan, so the ASan runtime has to be loaded first. LD_PRELOAD would do that
# but is inherited by every child: the shell tools the specs start (sh, ps,
# sqlite3) then run with ASan too, and `ps` deadlocks under it. So lua5.4
# is started through the dynamic loader with --preload, which affects that
# one process only. Workers are the sanitizer-built psurvey itself.
sanitizers=$(ldd "$core" | awk '$1 ~ /^lib(asan|ubsan|clang_rt\.)/ { print $3 }' | paste -sd: -)
if [ -z "$sanitizers" ]; then
  exec busted --lua=lua5.4 "$@"
fi
lua=$(command -v lua5.4)
loader=$(ldd "$lua" | awk '$1 ~ /\/ld-linux/ { print $1 }')
# Leaks are checked, in lua5.4 and in the workers, except the one the loader
# itself makes when it is run as a program (add_name_to_object, in ld.so).
# Reports go to files, one per process, because a worker's report at exit
# does not change any spec's outcome: any report fails the run.
reports=$BUILD_DIR/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
echo 'leak:add_name_to_object' >"$reports/lsan.supp"
# A spec that starts lua5.4 itself (the #install spec) loads the sanitized
# core.so without the preload; verify_asan_link_order=0 lets that process
# run, with ASan checking stack and globals but not the heap.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:verify_asan_link_order=0:log_path=$reports/asan}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$reports/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan}
echo "test.sh: sanitizer build: $loader --preload $sanitizers $lua" >&2
rc=0
"$loader" --preload "$sanitizers" "$lua" "$(command -v busted)" --ignore-lua "$@" || rc=$?

found=$(find "$reports" -name 'asan.*' -o -name 'ubsan.*' | sort)
if [ -n "$found" ]; then
  for f in $found; do
    echo "==== $f" >&2
    cat "$f" >&2
  done
  echo "test.sh: $(echo "$found" | wc -l) sanitizer report(s) in $reports" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
