#!/usr/bin/env bash
# test_cli.sh - the `redcoll` tool run as a user runs it: keygen and purge.
#
# usage: test_cli.sh CASE PATH/TO/pi PATH/TO/redcoll   (one CTest test per CASE, see cli.cmake)
#
# `redcoll keygen` makes the one secret a whole fleet shares, so it must never
# make a key others can read (whatever the umask) and never overwrite one in
# use; `redcoll purge` is how an operator tears a queue down, so it must
# remove every key of that queue - including the leftovers of a master that
# was killed - and nothing of any other queue, and the queue's workers must
# notice and exit cleanly.  Exit statuses are part of the interface (0 ok,
# 1 failure, 2 bad usage) because scripts depend on them.
. "$(dirname "$0")/cli-common.sh"

# run_cli WANT LABEL ARGS...: redcoll ARGS must exit WANT within 20 s.
run_cli() {
  local want=$1 label=$2 rc
  shift 2
  timeout -k 2 20 "$RCLI" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err"
  rc=$?
  log "redcoll $label: status $rc: $(head -n 1 "$WORK/cli.err")"
  check "redcoll $label: status $rc, want $want" [ $rc = "$want" ] || dump "$WORK/cli.out" "$WORK/cli.err"
}

is_key_text() { grep -qxE '[0-9a-f]{64}' "$1" && [ "$(wc -l <"$1")" = 1 ] && [ "$(wc -c <"$1")" = 65 ]; }
mode_of() { stat -c %a "$1"; }

case_cli_keygen() {
  local f=$WORK/fleet.key mode
  run_cli 0 "keygen FILE" keygen "$f"
  check "keygen created the file" [ -f "$f" ] || return
  mode=$(mode_of "$f")
  check "key file mode is 600 (got $mode)" [ "$mode" = 600 ]
  check "key file is 64 lowercase hex digits and a newline ($(head -c 80 "$f"))" is_key_text "$f"
  cp "$f" "$WORK/before"
  run_cli 1 "keygen over an existing key" keygen "$f"
  check "refusal names the file" grep -qF "$f" "$WORK/cli.err"
  check "existing key file unchanged" cmp -s "$f" "$WORK/before"
  check "existing key file mode still 600" [ "$(mode_of "$f")" = 600 ]

  # a permissive umask must not leak into the key's mode
  local f2=$WORK/umask0.key
  (umask 000 && exec timeout 20 "$RCLI" keygen "$f2" 2>/dev/null)
  check "keygen under umask 000 succeeds" [ -f "$f2" ] &&
    check "keygen under umask 000: mode 600 (got $(mode_of "$f2"))" [ "$(mode_of "$f2")" = 600 ]
  check "two keys differ" [ "$(cat "$f")" != "$(cat "$f2")" ]

  run_cli 2 "keygen without a file" keygen
  run_cli 2 "keygen with two files" keygen "$WORK/a.key" "$WORK/b.key"
  check "no file made from bad usage" [ ! -e "$WORK/a.key" ]
  run_cli 1 "keygen into a missing directory" keygen "$WORK/no/such/dir/k"
  run_cli 0 "keygen --help" keygen --help
  run_cli 2 "without a command" # no arguments at all
  run_cli 2 "unknown command" frobnicate
  run_cli 0 "--version" --version
  check "--version prints 'redcoll X.Y.Z' ($(cat "$WORK/cli.out"))" grep -qxE 'redcoll [0-9]+\.[0-9]+\.[0-9]+' \
    "$WORK/cli.out"
  run_cli 0 "--help" --help
  check "--help names keygen and purge on stdout" grep -q 'keygen' "$WORK/cli.out"
  check "--help names purge" grep -q 'purge' "$WORK/cli.out"

  # the key works: a job runs with it, and a worker refuses a key others can read
  chmod 644 "$f2"
  timeout 20 "$PI" --worker --redis redis://127.0.0.1:1 --key-file "$f2" --linger 1 2>"$WORK/pi.err"
  check "pi refuses a key file chmod 644'd after keygen" grep -q 'chmod 600' "$WORK/pi.err"
}

queue_keys() { rcli --scan --pattern "rc:{$1}:*"; }
xlen_is() { [ "$(rcli XLEN "rc:{$1}:tasks")" = "$2" ]; }
job_published() { [ -n "$(rcli --scan --pattern "rc:{$1}:job:*")" ] && xlen_is "$1" "$2"; }
# results, not entries: a small delivery's results share one entry, a field each
results_in() {
  local k
  k=$(rcli --scan --pattern "rc:{$1}:job:*:res" | head -n 1)
  [ -n "$k" ] && [ "$(rcli EVAL "local n = 0 for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do n = n + #e[2] / 2 end return n" 1 "$k")" = "$2" ]
}

case_cli_purge() {
  need_redis
  local key=$WORK/key q=purgeq m keys p w1 w2
  make_key "$key"

  # leftovers of a killed master: a published job (descriptor, 8 tasks) ...
  bg "$PI" --redis "$URL" --key-file "$key" --queue $q --samples 1e6 --tasks 8 --json >"$WORK/master.out" \
    2>"$WORK/master.err"
  m=$BG
  wait_for "the master to publish its job" 20 job_published $q 8
  kill -9 "$m"
  wait_gone "$m" 10
  # ... that workers then ran, leaving 8 results nobody will collect
  bg "$PI" --worker --redis "$URL" --key-file "$key" --queue $q 2>"$WORK/w1.log"
  w1=$BG
  bg "$PI" --worker --redis "$URL" --key-file "$key" --queue $q 2>"$WORK/w2.log"
  w2=$BG
  wait_for "the orphaned tasks to be run" 30 results_in $q 8
  wait_for "both workers to poll the queue" 20 workers_ready 2
  # a neighbour whose name starts with the same letters must survive
  rcli SET "rc:{${q}2}:job:0000000000000001" keep >/dev/null
  rcli SET "rc:${q}:unrelated" keep >/dev/null
  keys=$(queue_keys $q | sort | tr '\n' ' ')
  log "before purge: $keys"
  check "precondition: the queue has its stream, job and result keys ($keys)" \
    [ "$(queue_keys $q | wc -l)" -ge 3 ]

  run_cli 1 "purge without the key" purge --redis "$URL" "$q"
  check "the refusal says a key is needed" grep -qi 'key' "$WORK/cli.err"
  run_cli 0 "purge --redis URL --key-file K $q" purge --redis "$URL" --key-file "$key" "$q"
  for p in "$w1" "$w2"; do
    if wait_gone "$p" 10; then
      check "worker $p exits 0 after purge (status $STATUS)" [ "$STATUS" = 0 ] || dump "$WORK/w1.log" "$WORK/w2.log"
    else
      fail "worker $p still running 10 s after purge"
      dump "$WORK/w1.log" "$WORK/w2.log"
    fi
  done
  keys=$(queue_keys $q | grep -vxF "rc:{$q}:removed" | tr '\n' ' ')
  check "no rc:{$q}:* keys left after purge but the removal marker (found: $keys)" [ -z "$keys" ]
  check "the removal marker expires by itself" [ "$(rcli PTTL "rc:{$q}:removed")" -gt 0 ]
  check "the neighbour queue ${q}2 is untouched" [ "$(rcli GET "rc:{${q}2}:job:0000000000000001")" = keep ]
  check "keys outside any queue untouched" [ "$(rcli GET "rc:${q}:unrelated")" = keep ]

  # purging again, or a queue that never existed, is not an error
  run_cli 0 "purge of an already removed queue" purge --redis "$URL" --key-file "$key" "$q"
  REDCOLL_URL=$URL REDCOLL_KEY_FILE=$key run_cli 0 "purge with REDCOLL_URL and REDCOLL_KEY_FILE" purge neverexisted
  # usage and connection errors
  run_cli 2 "purge without a queue" purge --redis "$URL"
  run_cli 2 "purge with a malformed URL" purge --redis http://nowhere "$q"
  run_cli 2 "purge with a bad queue name" purge --redis "$URL" 'bad queue*'
  run_cli 1 "purge with nothing listening" purge --redis redis://127.0.0.1:1 --key-file "$key" "$q"
  check "the connection error names the address" grep -qF '127.0.0.1:1' "$WORK/cli.err"
  run_cli 0 "purge --help" purge --help
}

case "$CASE" in
cli_keygen | cli_purge) "case_$CASE" ;;
*) echo "test_cli.sh: unknown case '$CASE'" >&2; exit 2 ;;
esac
finish
