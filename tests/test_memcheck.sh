#!/usr/bin/env bash
# test_memcheck.sh - run the codec and ops tests, the embedded pi and the README
# example under valgrind memcheck, workers included.
#
# ASan+UBSan covers the whole suite; valgrind catches what they do not (reads
# of uninitialised memory, e.g. a padding byte MAC'd or sent to Redis) and
# checks the release build users run.  Workers are traced too
# (--trace-children), redis-server is not (it is not our code).  Any error or
# definite leak fails the test.
#   test_memcheck.sh CASE BUILD_DIR
set -u
case_=$1 build=$2
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --trace-children=yes --trace-children-skip='*redis-server*,*/redis-cli')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
case "$case_" in
wire) "${vg[@]}" "$build/tests/test_wire" ;;
resp) "${vg[@]}" "$build/tests/test_resp" ;;
ops) "${vg[@]}" "$build/tests/test_ops" ;;
pi) "${vg[@]}" "$build/bench/pi" --samples 2e6 --tasks 8 --workers 2 -q ;;
example) "${vg[@]}" "$build/apps/example_sumsq" ;;
*) echo "unknown case $case_" >&2; exit 2 ;;
esac
rc=$?
left=$(find "$tmp" -mindepth 1 | head -n 5)
[ -z "$left" ] || { echo "left behind: $left" >&2; exit 1; }
exit $rc
