#!/usr/bin/env bash
# test_pi.sh - the pi program run as a user runs it: master, workers, embedded default, signals, errors.
#
# usage: test_pi.sh CASE PATH/TO/pi PATH/TO/redcoll   (one CTest test per CASE, see cli.cmake)
#
# pi is the program people try first, so its promises are tested from the
# outside: the same seed gives the same bits for any pool size and thread
# count (and equals the in-process --local run), the embedded default and
# Ctrl-C leave no process or file behind, workers stop cleanly (status 0) on
# SIGTERM, SIGINT, --linger and when idle, a worker whose stderr is gone
# keeps serving, and bad input is a clear one-line
# error with status 2 rather than a hang or a crash.  Cases that need Redis
# get a private redis-server from the CTest fixture; cases that track child
# processes run a copy of pi from a private directory, so every process they
# start (master, workers, redis-server, whose socket lives under TMPDIR) has
# that unique path in its command line and can be found with pgrep.
. "$(dirname "$0")/cli-common.sh"

# Sanitizer and -O0 builds run the kernel ~100x slower: cli.cmake sets
# RC_CLI_SLOW=1 there, and the jobs shrink so the deadlines still mean something.
if [ "${RC_CLI_SLOW:-0}" = 1 ]; then
  PI_SAMPLES=2e7 PI_N=20000000 EMB_SAMPLES=1e7 EMB_N=10000000 BIG=(--samples 1e11 --tasks 10000)
else
  PI_SAMPLES=2e8 PI_N=200000000 EMB_SAMPLES=1e8 EMB_N=100000000 BIG=(--samples 1e12 --tasks 1000)
fi

# within_bound PI N: |PI - pi| < 6 sigma of the 4*hits/N estimator.
within_bound() {
  awk -v x="$1" -v n="$2" 'BEGIN {
    pi = atan2(0, -1); p = pi / 4; b = 6 * 4 * sqrt(p * (1 - p) / n); e = x - pi; if (e < 0) e = -e;
    if (!(e < b)) { printf "|%.10g - pi| = %.3g is not below the 6-sigma bound %.3g\n", x, e, b; exit 1 }
  }'
}

# Copy pi to a private bin dir and set up a private TMPDIR, both under BASE.
private_pi() {
  BASE=$WORK/$1
  mkdir -p "$BASE/bin" "$BASE/tmp" || exit 1
  cp "$PI" "$BASE/bin/pi" || exit 1
  PRIV=$BASE/bin/pi
}

# Nothing of a private run left: no process with BASE in its command line,
# nothing in its TMPDIR.
nothing_left() {
  local what=$1 left files
  left=$(pgrep -af -- "$BASE")
  check "$what: no process left behind (found: $left)" [ -z "$left" ]
  files=$(ls -A "$BASE/tmp")
  check "$what: nothing left in TMPDIR (found: $files)" [ -z "$files" ]
}

# stop_workers SECONDS PID...: SIGTERM each; each must exit 0 by the deadline.
stop_workers() {
  local secs=$1 p
  shift
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    if wait_gone "$p" "$secs"; then
      check "worker $p exits 0 on SIGTERM (status $STATUS)" [ "$STATUS" = 0 ]
    else
      fail "worker $p still running ${secs} s after SIGTERM"
    fi
  done
}

case_pi_bitident() {
  need_redis
  local key=$WORK/key ref refpi refhits w t i out rc
  make_key "$key"
  ref=$(timeout -k 5 60 "$PI" --local --samples $PI_SAMPLES --tasks 32 --seed 42 --json)
  check "pi --local exits 0" [ $? = 0 ]
  refpi=$(json_field pi "$ref")
  refhits=$(json_field hits "$ref")
  log "--local: pi=$refpi hits=$refhits"
  check "--local prints a pi field ($ref)" [ -n "$refpi" ]
  check "--local pi is within 6 sigma" within_bound "$refpi" $PI_N
  for w in 1 2 4; do
    for t in 1 2; do
      local pids=() logs=() f0=$FAILS
      for i in $(seq 1 $w); do
        bg "$PI" --worker --redis "$URL" --key-file "$key" --threads $t 2>"$WORK/w$w.t$t.$i.log"
        logs+=("$WORK/w$w.t$t.$i.log")
        pids+=("$BG")
      done
      out=$(timeout -k 5 90 "$PI" --redis "$URL" --key-file "$key" --samples $PI_SAMPLES --tasks 32 --seed 42 \
        --json 2>"$WORK/master.err")
      rc=$?
      local got ws hits
      got=$(json_field pi "$out")
      ws=$(json_field workers_seen "$out")
      hits=$(json_field hits "$out")
      log "W=$w T=$t: status $rc pi=$got hits=$hits workers_seen=$ws"
      check "W=$w T=$t: master exits 0 (status $rc)" [ $rc = 0 ] || dump "$WORK/master.err"
      check "W=$w T=$t: pi $got is bit-identical to --local's $refpi" [ "$got" = "$refpi" ]
      check "W=$w T=$t: hits $hits equal --local's $refhits" [ "$hits" = "$refhits" ]
      check "W=$w T=$t: mode is redis ($out)" contains "$out" '"mode":"redis"'
      check "W=$w T=$t: workers_seen '$ws' is a number" is_uint "$ws"
      is_uint "$ws" && check "W=$w T=$t: 1 <= workers_seen $ws <= $w" between "$ws" 1 $w
      stop_workers 10 "${pids[@]}"
      [ "$FAILS" -gt "$f0" ] && dump "$WORK/master.err" "${logs[@]}"
    done
  done
}

case_pi_embedded() {
  private_pi embedded
  local out rc got ws
  out=$(TMPDIR=$BASE/tmp timeout -k 5 60 "$PRIV" --samples $EMB_SAMPLES --workers 2 --json 2>"$WORK/embedded.err")
  rc=$?
  log "embedded: status $rc: $out"
  check "embedded default exits 0 (status $rc)" [ $rc = 0 ] || dump "$WORK/embedded.err"
  got=$(json_field pi "$out")
  ws=$(json_field workers_seen "$out")
  check "pi field present ($out)" [ -n "$got" ]
  [ -n "$got" ] && check "pi $got within 6 sigma" within_bound "$got" $EMB_N
  check "mode is embedded" contains "$out" '"mode":"embedded"'
  check "workers_seen '$ws' is a number" is_uint "$ws"
  is_uint "$ws" && check "1 <= workers_seen $ws <= 2" between "$ws" 1 2
  nothing_left "after the embedded run"
}

# --encrypt seals every payload; the answer is the same bits as the signed-
# only run and as --local, and nothing is left behind.
case_pi_encrypt() {
  private_pi encrypt
  local sealed plain local_out
  sealed=$(TMPDIR=$BASE/tmp timeout -k 5 60 "$PRIV" --samples $EMB_SAMPLES --tasks 8 --seed 9 --workers 2 --encrypt --json 2>"$WORK/enc.err")
  check "encrypted embedded run exits 0" [ $? = 0 ] || dump "$WORK/enc.err"
  plain=$(TMPDIR=$BASE/tmp timeout -k 5 60 "$PRIV" --samples $EMB_SAMPLES --tasks 8 --seed 9 --workers 2 --json 2>"$WORK/plain.err")
  local_out=$("$PRIV" --local --samples $EMB_SAMPLES --tasks 8 --seed 9 --json)
  check "sealed pi equals signed-only pi ($(json_field pi "$sealed") vs $(json_field pi "$plain"))" \
    [ -n "$(json_field pi "$sealed")" ] && [ "$(json_field pi "$sealed")" = "$(json_field pi "$plain")" ]
  check "sealed pi equals --local" [ "$(json_field pi "$sealed")" = "$(json_field pi "$local_out")" ]
  nothing_left "after the encrypted runs"
}

# The private run's redis socket, once its directory exists.
priv_sock() { ls -d "$BASE"/tmp/redcoll.*/redis.sock 2>/dev/null | head -n 1; }
sock_up() { local s; s=$(priv_sock); [ -n "$s" ] && [ -S "$s" ]; }
nworkers_up() { [ "$(pgrep -f -- "$PRIV --worker" | wc -l)" -ge "$1" ]; }
# Tasks handed to workers and not yet delivered: workers are computing.
tasks_in_hand() {
  local n
  n=$(redis-cli -s "$(priv_sock)" XPENDING 'rc:{pi}:tasks' w 2>/dev/null | head -n 1)
  is_uint "$n" && [ "$n" -ge 1 ]
}

# ctrl_c_round NAME HOW: start a big embedded job, wait until workers hold
# its tasks, then SIGINT either the master alone (HOW=pid) or, like a
# terminal's Ctrl-C, the master's whole process group (HOW=group).
ctrl_c_round() {
  local how=$2 m t0 el
  private_pi "$1"
  if [ "$how" = group ]; then
    set -m # job control: the job gets its own process group, SIGINT not ignored
  fi
  TMPDIR=$BASE/tmp bg "$PRIV" "${BIG[@]}" --workers 2 --json >"$BASE.out" 2>"$BASE.err"
  set +m
  m=$BG
  wait_for "$1: the private directory and redis socket" 20 sock_up &&
    wait_for "$1: 2 running workers" 20 nworkers_up 2 &&
    wait_for "$1: workers holding tasks of the job" 30 tasks_in_hand
  log "$1: job running: $(pgrep -af -- "$BASE" | tr '\n' ';')"
  t0=$(now_ms)
  if [ "$how" = group ]; then
    kill -INT -- "-$m"
  else
    kill -INT "$m"
  fi
  if wait_gone "$m" 20; then
    el=$(( $(now_ms) - t0 ))
    log "$1: master exited with status $STATUS ${el} ms after SIGINT"
    check "$1: master exits 130 on SIGINT (status $STATUS)" [ "$STATUS" = 130 ] || dump "$BASE.err"
  else
    fail "$1: master still running 20 s after SIGINT"
    dump "$BASE.err"
  fi
  check "$1: no result printed after an interrupt ($(cat "$BASE.out"))" [ ! -s "$BASE.out" ]
  check "$1: stderr says the job was interrupted" grep -qiE 'interrupt|cancel' "$BASE.err"
  nothing_left "$1: after Ctrl-C"
}

case_pi_ctrl_c() {
  ctrl_c_round master pid
  ctrl_c_round terminal group
}

# The master killed outright while its workers hold tasks: nothing it
# started may outlive it - not a worker half-way through a task, not one that
# has finished and finds its Redis gone (a draining worker waits for Redis to
# come back, which a private one never does).  Its private directory stays:
# nobody is left to remove it.
none_left() { [ -z "$(pgrep -f -- "$BASE")" ]; }

case_pi_kill9() {
  local m left
  private_pi kill9
  TMPDIR=$BASE/tmp bg "$PRIV" "${BIG[@]}" --workers 2 --json >"$BASE.out" 2>"$BASE.err"
  m=$BG
  wait_for "kill9: the private directory and redis socket" 20 sock_up &&
    wait_for "kill9: 2 running workers" 20 nworkers_up 2 &&
    wait_for "kill9: workers holding tasks of the job" 30 tasks_in_hand
  log "kill9: job running: $(pgrep -af -- "$BASE" | tr '\n' ';')"
  kill -KILL "$m"
  wait_gone "$m" 10
  wait_for "kill9: every process the master started to be gone" 15 none_left
  left=$(pgrep -af -- "$BASE")
  check "kill9: no process outlives a master killed -9 (found: $left)" [ -z "$left" ]
}

# expect_status WANT LABEL NEEDLE ARGS...: run pi ARGS, status must be WANT
# ("nonzero" for any failure) within 20 s, and stderr must mention NEEDLE.
expect_status() {
  local want=$1 label=$2 needle=$3 rc err t0 el
  shift 3
  t0=$(now_ms)
  timeout -k 2 20 "$PI" "$@" >"$WORK/err.out" 2>"$WORK/err.err"
  rc=$?
  el=$(( $(now_ms) - t0 ))
  err=$(head -c 600 "$WORK/err.err")
  log "$label: status $rc in $el ms: $(head -n 1 "$WORK/err.err")"
  check "$label: not a hang (status $rc after $el ms)" not_timeout $rc
  if [ "$want" = nonzero ]; then
    check "$label: fails (status $rc)" [ $rc != 0 ]
  else
    check "$label: status $rc, want $want" [ $rc = "$want" ]
  fi
  check "$label: message mentions '$needle' (stderr: $err)" contains "$err" "$needle"
  check "$label: no crash (status $rc)" [ $rc -lt 128 ]
}

case_pi_errors() {
  need_redis
  local key=$WORK/key
  make_key "$key"
  cp "$key" "$WORK/open.key" && chmod 644 "$WORK/open.key"
  expect_status 2 "--samples abc" "abc" --samples abc
  expect_status 2 "--samples -5" "--samples" --samples -5
  expect_status 2 "--tasks 0" "--tasks" --tasks 0
  expect_status 2 "--tasks > --samples" "--tasks" --samples 10 --tasks 11
  expect_status 2 "unknown option" "bogus-option" --bogus-option
  expect_status 2 "stray argument" "stray" stray
  expect_status 2 "--poll 0" "--poll" --poll 0
  expect_status 2 "--poll 6 (over 5 s)" "--poll" --poll 6
  expect_status 2 "--worker --local" "--local" --worker --local
  expect_status 2 "--worker without --redis" "--redis" --worker
  expect_status 2 "--worker --key-file without --redis" "--redis" --worker --key-file "$key"
  expect_status nonzero "--redis without a key" "--key-file" --redis "$URL"
  expect_status nonzero "key file mode 0644" "chmod" --redis "$URL" --key-file "$WORK/open.key"
  expect_status nonzero "missing key file" "$WORK/missing.key" --redis "$URL" --key-file "$WORK/missing.key"
  expect_status nonzero "malformed --redis URL" "http://nowhere" --redis http://nowhere --key-file "$key"
  expect_status nonzero "nothing listening" "127.0.0.1:1" --redis redis://127.0.0.1:1 --key-file "$key" --timeout 2
}

case_pi_linger() {
  need_redis
  local key=$WORK/key t0 el
  make_key "$key"
  t0=$(now_ms)
  bg "$PI" --worker --redis "$URL" --key-file "$key" --linger 1
  if wait_gone "$BG" 15; then
    el=$(( $(now_ms) - t0 ))
    log "--linger 1 worker exited with status $STATUS after $el ms"
    check "--linger 1: worker exits 0 (status $STATUS)" [ "$STATUS" = 0 ]
    check "--linger 1: worker stayed about 1 s idle first ($el ms)" [ "$el" -ge 900 ]
  else
    fail "--linger 1: worker still running after 15 s"
  fi
}

case_pi_sigterm() {
  need_redis
  local key=$WORK/key sig t0 el
  make_key "$key"
  for sig in TERM INT; do
    bg "$PI" --worker --redis "$URL" --key-file "$key" --queue "idle$sig"
    local pid=$BG
    wait_for "the worker to poll its queue" 20 workers_ready 1 || continue
    t0=$(now_ms)
    kill -$sig "$pid"
    if wait_gone "$pid" 3; then
      el=$(( $(now_ms) - t0 ))
      log "idle worker: SIG$sig -> status $STATUS after $el ms"
      check "idle worker exits 0 on SIG$sig (status $STATUS)" [ "$STATUS" = 0 ]
    else
      fail "idle worker still running 3 s after SIG$sig"
    fi
  done
}

# A worker whose stderr reader has gone (a log collector restarted, a
# terminal closed, `pi --worker 2>&1 | head`) keeps serving: its next log
# line fails with EPIPE instead of raising a SIGPIPE that would end it.
case_pi_stderr_gone() {
  need_redis
  local key=$WORK/key out rc got round
  make_key "$key"
  # -v -v: the worker logs as it serves, so each job writes to the dead pipe
  bg "$PI" --worker -v -v --redis "$URL" --key-file "$key" --queue stderrgone 2> >(exec true)
  local pid=$BG
  if ! wait_for "the worker to poll its queue" 20 workers_ready 1; then
    alive "$pid" || { wait_gone "$pid" 1; fail "the worker died writing to its closed stderr (status $STATUS)"; }
    return
  fi
  sleep 0.2 # the reader has long exited: every write from now on meets a closed pipe
  for round in 1 2; do
    out=$(timeout -k 5 30 "$PI" --redis "$URL" --key-file "$key" --queue stderrgone --samples 1e7 --tasks 8 \
      --seed 7 --json 2>"$WORK/master.err")
    rc=$?
    got=$(json_field pi "$out")
    log "round $round: master status $rc pi=$got"
    check "round $round: master exits 0 with the worker's stderr closed (status $rc)" [ $rc = 0 ] || dump "$WORK/master.err"
    check "round $round: pi $got is within 6 sigma" within_bound "$got" 10000000
    check "round $round: the worker is alive" alive "$pid" || return
  done
  stop_workers 10 "$pid"
}

case "$CASE" in
pi_bitident | pi_embedded | pi_ctrl_c | pi_kill9 | pi_errors | pi_linger | pi_sigterm | pi_encrypt | pi_stderr_gone) "case_$CASE" ;;
*) echo "test_pi.sh: unknown case '$CASE'" >&2; exit 2 ;;
esac
finish
