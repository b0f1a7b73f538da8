#!/usr/bin/env bash
# test_install.sh - install the build into a temporary prefix and build an outside program against it, three ways.
#
# Why: the install rules (cmake/RedcollInstall.cmake) are only right if a
# project that sees nothing but the installed files can use them.  This
# installs the build tree with `cmake --install --prefix TMP`, checks the
# files, the soname and the shared library's export list, runs the installed
# tools, then builds tests/install/consumer with find_package(redcoll)
# (redcoll::redcoll and redcoll::redcoll_static) and with plain
# `cc $(pkg-config --cflags --libs redcoll)` (and the static archive with
# `pkg-config --static`), runs every binary and compares its output.  A
# DESTDIR staging install must keep the final prefix in redcoll.pc.
#
# usage: test_install.sh BUILD_DIR CONSUMER_SRC CC VERSION CMAKE [EXTRA_CFLAGS]
set -euo pipefail
build=$1 consumer=$2 cc=$3 version=$4 cmake=$5 extra=${6:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }
# shellcheck disable=SC2206
xflags=($extra)

step "cmake --install $build --prefix $tmp/prefix"
prefix=$tmp/prefix
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install failed"; }

pc=$(find "$prefix" -name redcoll.pc -path '*/pkgconfig/*' | head -n1)
[ -n "$pc" ] || fail "no redcoll.pc installed"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libredcoll.a" "$libdir/libredcoll.so" "$libdir/libredcoll.so.0" "$libdir/libredcoll.so.$version" \
         "$prefix/include/redcoll.h" "$prefix/bin/redcoll" "$prefix/bin/pi" \
         "$libdir/cmake/redcoll/redcollConfig.cmake" "$libdir/cmake/redcoll/redcollConfigVersion.cmake" \
         "$libdir/cmake/redcoll/redcollTargets.cmake"; do
  [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

step "soname and exported symbols"
soname=$(readelf -d "$libdir/libredcoll.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libredcoll.so.0 ] || fail "soname is '$soname', expected libredcoll.so.0"
[ "$(readlink "$libdir/libredcoll.so.0")" = "libredcoll.so.$version" ] || fail "libredcoll.so.0 does not point to libredcoll.so.$version"
exported=$(nm -D --defined-only "$libdir/libredcoll.so" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sort)
n=0
for s in $exported; do
  grep -qE "\\b${s}[[:space:]]*\\(" "$prefix/include/redcoll.h" || fail "libredcoll.so exports '$s', which redcoll.h does not declare"
  n=$((n + 1))
done
[ "$n" -ge 30 ] || fail "libredcoll.so exports only $n functions"
for s in rc_ctx_create rc_strerror rc_reduce_local rc_job_run rc_worker_run rc_local_start; do
  grep -qx "$s" <<<"$exported" || fail "libredcoll.so does not export $s"
done
echo "libredcoll.so: soname $soname, $n functions exported, all declared in redcoll.h"

step "installed tools"
out=$("$prefix/bin/redcoll" --version) || fail "redcoll --version failed"
grep -q "$version" <<<"$out" || fail "redcoll --version says '$out', expected $version"
out=$("$prefix/bin/pi" --local --samples 200000 --tasks 4 --threads 1 -q) || fail "installed pi --local failed"
grep -q '^pi = 3\.1' <<<"$out" || fail "installed pi printed: $out"
echo "redcoll --version: $("$prefix/bin/redcoll" --version); pi --local: $(head -n1 <<<"$out")"

expected="redcoll $version
sum: success: 11 22 33
band on double: operation not defined for this datatype"
check_run() { # name binary [env...]
  local name=$1 bin=$2 got
  shift 2
  got=$(env "$@" "$bin") || fail "$name: exited with status $?"
  [ "$got" = "$expected" ] || fail "$name printed:
$got
expected:
$expected"
  echo "$name: output ok"
}
needs_so() { # binary yes|no
  if readelf -d "$1" | grep -q 'NEEDED.*libredcoll\.so'; then
    [ "$2" = yes ] || fail "$1 links libredcoll.so, expected the static archive"
  else
    [ "$2" = no ] || fail "$1 does not link libredcoll.so"
  fi
}
loaded_from() { # binary: the libredcoll.so the loader picks with LD_LIBRARY_PATH=$libdir
  LD_LIBRARY_PATH=$libdir ldd "$1" | awk '/libredcoll\.so/ {print $3}'
}

step "CMake consumer: find_package(redcoll $version EXACT)"
"$cmake" -S "$consumer" -B "$tmp/cmake-consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DREDCOLL_EXPECT_VERSION="$version" -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/consumer-configure.log" 2>&1 ||
  { cat "$tmp/consumer-configure.log"; fail "consumer configure failed"; }
grep 'consumer: redcoll' "$tmp/consumer-configure.log"
"$cmake" --build "$tmp/cmake-consumer" >"$tmp/consumer-build.log" 2>&1 ||
  { cat "$tmp/consumer-build.log"; fail "consumer build failed"; }
needs_so "$tmp/cmake-consumer/consumer_shared" yes
needs_so "$tmp/cmake-consumer/consumer_static" no
[ "$(loaded_from "$tmp/cmake-consumer/consumer_shared")" = "$libdir/libredcoll.so.0" ] ||
  fail "consumer_shared loads $(loaded_from "$tmp/cmake-consumer/consumer_shared"), not $libdir/libredcoll.so.0"
check_run "cmake redcoll::redcoll (shared)" "$tmp/cmake-consumer/consumer_shared" LD_LIBRARY_PATH="$libdir"
check_run "cmake redcoll::redcoll_static" "$tmp/cmake-consumer/consumer_static"

step "pkg-config consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ "$(pkg-config --modversion redcoll)" = "$version" ] || fail "pkg-config --modversion redcoll: $(pkg-config --modversion redcoll)"
grep -qx "prefix=$prefix" "$pc" || fail "redcoll.pc has $(grep '^prefix=' "$pc"), expected prefix=$prefix"
echo "pkg-config --cflags --libs redcoll: $(pkg-config --cflags --libs redcoll)"
echo "pkg-config --static --libs redcoll: $(pkg-config --static --libs redcoll)"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror "${xflags[@]}")
# shellcheck disable=SC2046
"$cc" "${cflags[@]}" "$consumer/main.c" -o "$tmp/pc_shared" $(pkg-config --cflags --libs redcoll) ||
  fail "cc \$(pkg-config --cflags --libs redcoll) failed"
needs_so "$tmp/pc_shared" yes
check_run "pkg-config (shared)" "$tmp/pc_shared" LD_LIBRARY_PATH="$libdir"
# The archive itself, with what Libs.private and Requires.private promise.
static_libs=$(pkg-config --static --libs redcoll | sed 's/-lredcoll\b/-l:libredcoll.a/')
# shellcheck disable=SC2046,SC2086
"$cc" "${cflags[@]}" "$consumer/main.c" -o "$tmp/pc_static" $(pkg-config --cflags redcoll) $static_libs ||
  fail "cc with \$(pkg-config --static --libs redcoll) and libredcoll.a failed: Libs.private/Requires.private incomplete"
needs_so "$tmp/pc_static" no
check_run "pkg-config --static (libredcoll.a)" "$tmp/pc_static"

step "DESTDIR staging keeps the final prefix"
DESTDIR="$tmp/stage" "$cmake" --install "$build" --prefix /opt/redcoll >"$tmp/stage.log" || { cat "$tmp/stage.log"; fail "DESTDIR install failed"; }
spc=$(find "$tmp/stage/opt/redcoll" -name redcoll.pc | head -n1)
[ -n "$spc" ] || fail "DESTDIR install has no redcoll.pc under $tmp/stage/opt/redcoll"
grep -qx "prefix=/opt/redcoll" "$spc" || fail "staged redcoll.pc has $(grep '^prefix=' "$spc"), expected prefix=/opt/redcoll"
echo "staged redcoll.pc: prefix=/opt/redcoll"
echo "test_install: all checks passed"
