#!/usr/bin/env bash
# test.sh - set up, build and pass the whole suite, as CI does:
#  1. gcc build with -Werror, full CTest suite (each integration test starts its
#     own redis-server on a free loopback port through a CTest fixture);
#  2. clang build with -Werror, libFuzzer targets run for a bounded time;
#  3. gcc AddressSanitizer + UndefinedBehaviorSanitizer build, full suite again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
run_suite() {
  (cd "$1" && ctest --output-on-failure -j2 --timeout 600)
}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDCOLL_WERROR=ON -DREDCOLL_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
run_suite build
# clang: the second compiler's warnings, and the libFuzzer targets, each
# fuzzed for a bounded time from tests/fuzz/corpus, then every saved crash
# replayed as a regression
cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDCOLL_WERROR=ON \
  -DREDCOLL_TESTS=ON -DREDCOLL_FUZZ=ON -DREDCOLL_FUZZ_SECONDS="${REDCOLL_FUZZ_SECONDS:-15}" >/dev/null
cmake --build build-clang -j"$jobs"
(cd build-clang && ctest --output-on-failure -j2 -L 'fuzz')
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DREDCOLL_SANITIZE=ON -DREDCOLL_WERROR=ON -DREDCOLL_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_suite build-asan
