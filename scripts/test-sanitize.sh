#!/usr/bin/env bash
# Builds the library, the CLI and the tests with AddressSanitizer + UndefinedBehaviorSanitizer (clang, -O1,
# build-sanitize/) and runs the whole suite under them. Every process the tests start (the test binary and each
# `dseek` it runs) writes any sanitizer report to build-sanitize/reports/; the script fails if one exists, even
# when the test that caused it expected the command to fail.
#   scripts/test-sanitize.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build-sanitize
start=$(date +%s)
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDSEEK_SANITIZE=address,undefined \
    -DDSEEK_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$BUILD" --target dseek dseek_tests
built=$(date +%s)

reports="$PWD/$BUILD/reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0:halt_on_error=1:symbolize=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
rc=0
ctest --test-dir "$BUILD" --output-on-failure -j2 --timeout 1500 "$@" || rc=$?
end=$(date +%s)
echo "sanitized build $((built - start)) s, suite $((end - built)) s"

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:"
  for f in "$reports"/*; do
    echo "== $f"
    head -40 "$f"
  done
  exit 1
fi
exit $rc
