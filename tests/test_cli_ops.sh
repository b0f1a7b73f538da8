#!/usr/bin/env bash
# test_cli_ops.sh - redcoll workers, jobs, tasks, stats, watch, cancel and worker run against live jobs.
#
# usage: test_cli_ops.sh CASE PATH/TO/pi PATH/TO/redcoll PATH/TO/plugin_master PATH/TO/libplugin_example.so
#        (one CTest test per CASE, see cli_ops.cmake)
#
# These commands are what an operator trusts when deciding to kill a worker,
# cancel a job or page someone, so each is checked against what is known to
# be true at that moment: the pids of the workers this test started, the id,
# kernel and task count of the job it submitted, tasks that must be done or
# in a worker's hands while the job runs, a rejection that a worker holding
# the wrong key must cause.  `cancel` must stop a running master with
# "cancelled" and leave nothing of the job but its end marker; the plugin
# worker must give an exact answer with kernels it was not compiled with;
# its supervisor must replace a child killed with SIGKILL and leave no child
# behind on SIGTERM.  Machine-readable output (--json) is checked field by
# field; it puts one list item per line so plain grep and sed can read it.
# Every wait is a poll with a deadline (cli-common.sh).
. "$(dirname "$0")/cli-common.sh"

unset REDCOLL_URL_FILE
MASTER=${4:-}
PLUGIN=${5:-}
if [ ! -x "$MASTER" ] || [ ! -f "$PLUGIN" ]; then
  echo "usage: $0 CASE PI REDCOLL PLUGIN_MASTER PLUGIN.so" >&2
  exit 2
fi

# Sanitizer and -O0 builds run pi ~100x slower: shrink the jobs, not the deadlines.
if [ "${RC_CLI_SLOW:-0}" = 1 ]; then
  PER_TASK=3000000
else
  PER_TASK=300000000 # ~0.3 s of one core per pi task
fi

# expect WANT LABEL ARGS...: redcoll ARGS must exit WANT within 20 s;
# stdout in OUT (and $WORK/cli.out), stderr in $WORK/cli.err.
OUT=
expect() {
  local want=$1 label=$2 rc
  shift 2
  timeout -k 2 20 "$RCLI" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err"
  rc=$?
  OUT=$(cat "$WORK/cli.out")
  check "redcoll $label: status $rc, want $want ($(head -n 2 "$WORK/cli.err" | tr '\n' ' '))" [ $rc = "$want" ] ||
    dump "$WORK/cli.out" "$WORK/cli.err"
}

# has TEXT NEEDLE: TEXT contains NEEDLE (no process: this box forks slowly).
has() { [[ $1 == *"$2"* ]]; }

# cond 'SHELL CONDITION': for check, when a condition has several parts.
cond() { eval "$1"; }
dead() { ! alive "$1"; }

# jline NEEDLE: the line of OUT holding NEEDLE (--json: one item per line).
jline() { printf '%s\n' "$OUT" | grep -F -- "$1" | head -n 1; }
# jnum NAME LINE: a numeric field (empty if absent).
jnum() { json_field "$1" "$2" | grep -E '^[0-9]+(\.[0-9]+)?$'; }

# The job id a pi master printed ("pi: job ID submitted ...").
job_of() { sed -n 's/.*job \([0-9a-f]\{16\}\) submitted.*/\1/p' "$1" | head -n 1; }
has_job_id() { [ -n "$(job_of "$1")" ]; }

start_pi_workers() { # N QUEUE KEY [extra args]: pids in WPIDS
  local n=$1 q=$2 key=$3 i
  shift 3
  WPIDS=()
  for i in $(seq 1 "$n"); do
    bg "$PI" --worker --redis "$URL" --key-file "$key" --queue "$q" "$@" 2>"$WORK/w$i.log"
    WPIDS+=("$BG")
  done
}

stop_all() { # PID...: SIGTERM, each must exit 0 within 10 s
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    if wait_gone "$p" 10; then
      check "process $p exits 0 on SIGTERM (status $STATUS)" [ "$STATUS" = 0 ]
    else
      fail "process $p still running 10 s after SIGTERM"
    fi
  done
}

# registered QUEUE PID...: every PID is in `redcoll workers --json`.
registered() {
  local q=$1 p out
  shift
  out=$(timeout 10 "$RCLI" workers --redis "$URL" --queue "$q" --json 2>/dev/null) || return 1
  for p in "$@"; do
    printf '%s\n' "$out" | grep -qF "\"pid\":$p," || return 1
  done
}

# progress QUEUE JOB KEY MIN_DONE: the job shows at least MIN_DONE tasks done.
progress() {
  local out line d
  out=$(timeout 10 "$RCLI" jobs --redis "$URL" --queue "$1" --key-file "$3" --json 2>/dev/null) || return 1
  line=$(printf '%s\n' "$out" | grep -F "\"id\":\"$2\"")
  d=$(json_field done "$line")
  is_uint "$d" && [ "$d" -ge "$4" ]
}

# done_and_running QUEUE JOB: `tasks JOB --json` shows a done and a running task.
done_and_running() {
  timeout 10 "$RCLI" tasks "$2" --redis "$URL" --queue "$1" --json >"$WORK/tasks.poll" 2>/dev/null || return 1
  grep -q '"state":"done"' "$WORK/tasks.poll" && grep -q '"state":"running"' "$WORK/tasks.poll"
}

case_ops_inspect() {
  need_redis
  local key=$WORK/key m job line d r q n tasks=200 p
  make_key "$key"
  start_pi_workers 2 pi "$key"
  wait_for "2 workers in the registry" 20 registered pi "${WPIDS[@]}"
  bg "$PI" --redis "$URL" --key-file "$key" --samples $((tasks * PER_TASK)) --tasks $tasks -q --json \
    >"$WORK/master.out" 2>"$WORK/master.err"
  m=$BG
  wait_for "the master to print its job id" 20 has_job_id "$WORK/master.err"
  job=$(job_of "$WORK/master.err")
  log "job $job"
  wait_for "a done and a running task" 30 done_and_running pi "$job" || dump "$WORK/master.err" "$WORK/w1.log"

  # workers: both pids, with their queue; busy or idle, tasks done counted
  expect 0 "workers --json" workers --redis "$URL" --queue pi --json
  for p in "${WPIDS[@]}"; do
    line=$(jline "\"pid\":$p,")
    check "workers --json lists worker $p ($OUT)" [ -n "$line" ] || continue
    check "worker $p: queue pi" contains "$line" '"queues":"pi"'
    check "worker $p: a state" grep -qE '"state":"(busy|idle)"' <<<"$line"
    check "worker $p: consumer names its pid" grep -qE "\"consumer\":\"[^\"]*:$p:[0-9a-f]{16}\"" <<<"$line"
    check "worker $p: numeric done and up_ms ($line)" \
      cond 'is_uint "$(json_field done "$line")" && is_uint "$(json_field up_ms "$line")"'
  done
  check "workers --json lists exactly 2 workers" [ "$(grep -c '"consumer"' <<<"$OUT")" = 2 ]
  expect 0 "workers (text)" workers --redis "$URL" --queue pi
  for p in "${WPIDS[@]}"; do check "workers text shows pid $p" grep -qw "$p" <<<"$OUT"; done

  # jobs: the job, its kernel and task count, verified with the key
  expect 0 "jobs --json" jobs --redis "$URL" --queue pi --key-file "$key" --json
  line=$(jline "\"id\":\"$job\"")
  check "jobs --json lists job $job ($OUT)" [ -n "$line" ]
  check "job kernel is pi" contains "$line" '"kernel":"pi"'
  check "job has $tasks tasks" contains "$line" "\"tasks\":$tasks,"
  check "job descriptor verifies with the key" contains "$line" '"verified":true'
  check "job is running or queued" grep -qE '"state":"(running|queued|complete)"' <<<"$line"
  d=$(json_field done "$line") r=$(json_field running "$line") q=$(json_field queued "$line")
  check "done/running/queued are numbers ($d/$r/$q)" cond 'is_uint "$d" && is_uint "$r" && is_uint "$q"' &&
    check "1 <= done ($d) and done+running+queued ($((d + r + q))) <= $tasks" \
      cond '[ "$d" -ge 1 ] && [ $((d + r + q)) -le $tasks ]' &&
    check "running ($r) <= 2 workers x 2 (each task in hand, and the next taken ahead: RC_OPT_PREFETCH)" \
      [ "$r" -le 4 ]
  expect 0 "jobs (text)" jobs --redis "$URL" --queue pi --key-file "$key"
  check "jobs text shows the job id and kernel" grep -qE "^$job +pi " <<<"$OUT"

  # stats: sane numbers
  expect 0 "stats --json" stats --redis "$URL" --queue pi --key-file "$key" --json --window 30
  line=$OUT
  check "stats: 2 workers" [ "$(json_field workers "$line")" = 2 ]
  check "stats: 1 job" [ "$(json_field jobs "$line")" = 1 ]
  r=$(json_field tasks_running "$line") q=$(json_field tasks_queued "$line")
  check "stats: running ($r) in [0,4], queued ($q) < $tasks" \
    cond 'is_uint "$r" && is_uint "$q" && [ "$r" -le 4 ] && [ "$q" -lt $tasks ]'
  d=$(json_field throughput_per_s "$line")
  check "stats: throughput ($d/s) is positive" awk -v x="$d" 'BEGIN { exit !(x > 0) }'
  check "stats: no auth failures" [ "$(json_field auth_failures "$line")" = 0 ]
  check "stats: no redeliveries" [ "$(json_field redeliveries "$line")" = 0 ]
  check "stats: done ($(json_field done "$line")) >= 1" [ "$(json_field done "$line")" -ge 1 ]
  expect 0 "stats (text)" stats --redis "$URL" --queue pi
  check "stats text has throughput and auth failures" grep -q 'throughput' <<<"$OUT"

  # tasks: every task accounted for; done ones name a worker, running ones a pid
  expect 0 "tasks JOB --json" tasks "$job" --redis "$URL" --queue pi --json
  check "tasks --json names the job and kernel" contains "$(head -n 1 <<<"$OUT")" "\"job\":\"$job\""
  n=$(grep -c '"rank":' <<<"$OUT")
  check "tasks --json has one item per task ($n of $tasks)" [ "$n" = $tasks ]
  line=$(jline '"state":"done"')
  check "a done task names its worker id ($line)" grep -qE '"worker_id":"[0-9a-f]{16}"' <<<"$line"
  check "a done task has an attempt number" contains "$line" '"attempt":'
  line=$(jline '"state":"running"')
  if [ -n "$line" ]; then
    p=$(json_field pid "$line")
    check "a running task's pid ($p) is one of our workers (${WPIDS[*]})" grep -qw -- "$p" <<<"${WPIDS[*]}"
    check "a running task has its delivery count" contains "$line" '"deliveries":1'
  fi
  expect 0 "tasks JOB --state done" tasks "$job" --redis "$URL" --queue pi --state done
  check "tasks --state done lists only done tasks" \
    [ -z "$(sed -n '3,$p' <<<"$OUT" | grep -vE '^ +[0-9]+  done ')" ]

  # done with it: cancel (a natural end is checked in ops_plugin, where jobs are fast)
  expect 0 "cancel the inspected job" cancel "$job" --redis "$URL" --queue pi --key-file "$key"
  if wait_gone "$m" 20; then
    check "master exits 130 once its job is cancelled (status $STATUS)" [ "$STATUS" = 130 ] ||
      dump "$WORK/master.err"
  else
    fail "master still running 20 s after cancel"
  fi
  stop_all "${WPIDS[@]}"
}

case_ops_watch() {
  need_redis
  local key=$WORK/key m job n w
  make_key "$key"
  start_pi_workers 1 pi "$key"
  w=${WPIDS[0]}
  wait_for "the worker in the registry" 20 registered pi "$w"
  bg "$PI" --redis "$URL" --key-file "$key" --samples $((40 * PER_TASK)) --tasks 40 -q >/dev/null 2>"$WORK/master.err"
  m=$BG
  wait_for "the master to print its job id" 20 has_job_id "$WORK/master.err"
  job=$(job_of "$WORK/master.err")
  expect 0 "watch --count 2" watch --redis "$URL" --queue pi --count 2 --interval 0.3
  n=$(grep -c '^== redcoll watch' <<<"$OUT")
  check "watch --count 2 prints two snapshots (got $n)" [ "$n" = 2 ]
  check "no terminal escapes when stdout is not a terminal" [ -z "$(grep -F $'\033' <<<"$OUT")" ]
  check "the snapshots show the worker pid $w" [ "$(grep -cw "$w" <<<"$OUT")" -ge 2 ]
  check "the snapshots show job $job" grep -q "^$job " <<<"$OUT"
  check "the snapshots show stats" [ "$(grep -c 'throughput' <<<"$OUT")" = 2 ]
  expect 0 "watch --json --count 3" watch --redis "$URL" --queue pi --json --count 3 --interval 0.1
  n=$(grep -c '^{"queue":"pi",.*"stats":{' <<<"$OUT")
  check "watch --json prints one object per snapshot (3, got $n)" [ "$n" = 3 ] &&
    check "watch --json has no error" [ "$(grep -c '"error":null' <<<"$OUT")" = 3 ]
  # Ctrl-C stops it with status 0
  bg "$RCLI" watch --redis "$URL" --queue pi --interval 0.2
  local wp=$BG
  sleep 0.5
  kill -INT "$wp"
  if wait_gone "$wp" 5; then
    check "watch exits 0 on SIGINT (status $STATUS)" [ "$STATUS" = 0 ]
  else
    fail "watch still running 5 s after SIGINT"
  fi
  expect 0 "cancel the watched job" cancel "$job" --redis "$URL" --queue pi --key-file "$key"
  wait_gone "$m" 20
  stop_all "$w"
}

only_end_marker() {
  local keys
  keys=$(rcli --scan --pattern "rc:{pi}:job:*")
  [ "$keys" = "rc:{pi}:job:$1:end" ]
}
no_entries_left() { [ "$(rcli XLEN 'rc:{pi}:tasks')" = 0 ]; }

case_ops_cancel() {
  need_redis
  local key=$WORK/key m job keys line
  make_key "$key"
  start_pi_workers 2 pi "$key"
  wait_for "2 workers in the registry" 20 registered pi "${WPIDS[@]}"
  bg "$PI" --redis "$URL" --key-file "$key" --samples $((200 * PER_TASK)) --tasks 200 -q --json \
    >"$WORK/master.out" 2>"$WORK/master.err"
  m=$BG
  wait_for "the master to print its job id" 20 has_job_id "$WORK/master.err"
  job=$(job_of "$WORK/master.err")
  wait_for "the job to make progress" 30 progress pi "$job" "$key" 1

  expect 1 "cancel without the key" cancel "$job" --redis "$URL" --queue pi
  check "the refusal says a key is needed" grep -qi 'key' "$WORK/cli.err"
  expect 0 "cancel JOB --json" cancel "$job" --redis "$URL" --queue pi --key-file "$key" --json
  check "cancel --json reports it ($OUT)" contains "$OUT" "\"job\":\"$job\"" &&
    check "cancel --json: cancelled, kernel pi, 200 tasks" \
      grep -qE '"cancelled":true,"kernel":"pi","tasks":200' <<<"$OUT"
  if wait_gone "$m" 15; then
    check "the master fails with status 130 (cancelled), got $STATUS" [ "$STATUS" = 130 ] || dump "$WORK/master.err"
    check "the master says the job was cancelled" grep -qi 'cancelled' "$WORK/master.err"
    check "the master printed no result" [ ! -s "$WORK/master.out" ]
  else
    fail "master still running 15 s after cancel"
    dump "$WORK/master.err"
  fi
  wait_for "workers to drop the job's last tasks" 15 no_entries_left
  keys=$(rcli --scan --pattern "rc:{pi}:job:*" | tr '\n' ' ')
  check "only the end marker is left of the job (found: $keys)" only_end_marker "$job"
  check "the end marker expires by itself" [ "$(rcli PTTL "rc:{pi}:job:$job:end")" -gt 0 ]
  expect 0 "jobs after cancel" jobs --redis "$URL" --queue pi --json
  check "a cancelled job is not listed" [ -z "$(jline "\"id\":\"$job\"")" ]
  expect 0 "jobs --all after cancel" jobs --redis "$URL" --queue pi --json --all --key-file "$key"
  line=$(jline "\"id\":\"$job\"")
  check "jobs --all: cancelled, authentic ($line)" grep -qE '"state":"cancelled".*"verified":true' <<<"$line"
  expect 1 "tasks of a cancelled job" tasks "$job" --redis "$URL" --queue pi
  check "tasks says it was cancelled" grep -q 'cancelled' "$WORK/cli.err"
  expect 1 "cancel again" cancel "$job" --redis "$URL" --queue pi --key-file "$key"
  check "cancel again says it already ended" grep -q 'already ended' "$WORK/cli.err"
  expect 1 "cancel an unknown job" cancel 0123456789abcdef --redis "$URL" --queue pi --key-file "$key"
  check "cancel of an unknown job says not found" grep -qi 'not found' "$WORK/cli.err"
  expect 2 "cancel a malformed id" cancel 12345 --redis "$URL" --queue pi --key-file "$key"
  expect 2 "cancel without a job" cancel --redis "$URL" --queue pi --key-file "$key"
  # the workers were not disturbed: idle, still serving
  expect 0 "workers after cancel" workers --redis "$URL" --queue pi --json
  check "both workers still registered" [ "$(grep -c '"consumer"' <<<"$OUT")" = 2 ]
  stop_all "${WPIDS[@]}"
}

auth_failures_seen() {
  local out
  out=$(timeout 10 "$RCLI" stats --redis "$URL" --queue pi --key-file "$1" --json 2>/dev/null) || return 1
  [ "$(json_field rejections "$out")" -ge 1 ] 2>/dev/null
}

case_ops_authfail() {
  need_redis
  local key=$WORK/key bad=$WORK/bad.key m job line bw
  make_key "$key"
  make_key "$bad"
  bg "$PI" --redis "$URL" --key-file "$key" --samples $((4 * PER_TASK)) --tasks 4 -q --json \
    >"$WORK/master.out" 2>"$WORK/master.err"
  m=$BG
  wait_for "the master to print its job id" 20 has_job_id "$WORK/master.err"
  job=$(job_of "$WORK/master.err")
  # a worker holding another key refuses the tasks and says so on the result stream
  bg "$PI" --worker --redis "$URL" --key-file "$bad" --queue pi 2>"$WORK/bad.log"
  bw=$BG
  wait_for "a rejection notice" 20 auth_failures_seen "$key" || dump "$WORK/bad.log" "$WORK/master.err"
  expect 0 "stats --json with a rejection" stats --redis "$URL" --queue pi --key-file "$key" --json
  check "stats: auth_failures >= 1 ($OUT)" [ "$(json_field auth_failures "$OUT")" -ge 1 ]
  expect 0 "stats (text)" stats --redis "$URL" --queue pi
  check "stats text reports the rejection" grep -qE 'auth failures +[1-9]' <<<"$OUT"
  expect 0 "jobs --json with the right key" jobs --redis "$URL" --queue pi --key-file "$key" --json
  line=$(jline "\"id\":\"$job\"")
  check "the job's descriptor verifies ($line)" contains "$line" '"verified":true'
  check "the job counts the rejection" [ "$(json_field rejects "$line")" -ge 1 ]
  expect 0 "jobs --json with the wrong key" jobs --redis "$URL" --queue pi --key-file "$bad" --json
  line=$(jline "\"id\":\"$job\"")
  check "with the wrong key the descriptor does not verify ($line)" contains "$line" '"verified":false' &&
    check "and the reason names the key ids" grep -q '"verify_error":"MAC made with key id' <<<"$line"
  expect 0 "jobs (text) with the wrong key" jobs --redis "$URL" --queue pi --key-file "$bad"
  check "jobs text marks it BAD" grep -qE "^$job .* BAD$" <<<"$OUT"
  expect 0 "jobs --json without a key" jobs --redis "$URL" --queue pi --json
  check "without a key nothing is verified" contains "$(jline "\"id\":\"$job\"")" '"verified":null'
  expect 0 "tasks JOB" tasks "$job" --redis "$URL" --queue pi
  check "tasks reports the rejection notices" grep -q 'rejection notice' <<<"$OUT"
  stop_all "$bw"
  # a worker with the right key finishes the job
  start_pi_workers 1 pi "$key"
  if wait_gone "$m" 30; then
    check "the master then succeeds (status $STATUS)" [ "$STATUS" = 0 ] || dump "$WORK/master.err"
  else
    fail "master still running 30 s after a good worker joined"
  fi
  stop_all "${WPIDS[@]}"
}

case_ops_plugin() {
  need_redis
  local key=$WORK/key w out t0 el
  make_key "$key"
  bg "$RCLI" worker --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue pq -v 2>"$WORK/pw.log"
  w=$BG
  wait_for "the plugin worker in the registry" 20 registered pq "$w" || dump "$WORK/pw.log"
  check "the worker logs the plugin's kernels" grep -q 'kernel(s) square, sum' "$WORK/pw.log"
  local rc
  out=$(REDCOLL_URL=$URL REDCOLL_KEY_FILE=$key timeout -k 2 30 "$MASTER" pq square 4096 16 2>"$WORK/m1.err")
  rc=$?
  check "square job through the plugin: exact (status $rc: $out)" \
    cond '[ $rc = 0 ] && contains "$out" "\"exact\":true"' || dump "$WORK/m1.err" "$WORK/pw.log"
  out=$(REDCOLL_URL=$URL REDCOLL_KEY_FILE=$key timeout -k 2 30 "$MASTER" pq sum 100000 10 2>"$WORK/m2.err")
  rc=$?
  check "sum job through the plugin: exact 5000050000 (status $rc: $out)" \
    cond '[ $rc = 0 ] && contains "$out" "\"result\":5000050000,\"expected\":5000050000,\"exact\":true"' ||
    dump "$WORK/m2.err" "$WORK/pw.log"
  # the tasks-done count travels with the worker's next heartbeat
  wait_for "the registry to count the plugin worker's 26 tasks" 10 counted pq "$w" 26
  # a collected job leaves the views; --all still shows how it ended
  local job
  job=$(sed -n 's/.*"job":"\([0-9a-f]\{16\}\)".*/\1/p' <<<"$out")
  expect 0 "jobs after the jobs" jobs --redis "$URL" --queue pq --json
  check "collected jobs are no longer listed ($OUT)" [ -z "$(jline '"id":')" ]
  expect 0 "jobs --all after the jobs" jobs --redis "$URL" --queue pq --key-file "$key" --json --all
  check "jobs --all: job $job is done, its end marker authentic ($(jline "\"id\":\"$job\""))" \
    grep -qE '"state":"done".*"verified":true' <<<"$(jline "\"id\":\"$job\"")"
  check "jobs --all lists both jobs" [ "$(grep -c '"id":' <<<"$OUT")" = 2 ]
  stop_all "$w"

  # plugins that cannot be used are refused, naming the file
  expect 1 "worker with a missing plugin" worker --plugin "$WORK/nope.so" --redis "$URL" --key-file "$key"
  check "the error names the missing plugin" grep -qF "$WORK/nope.so" "$WORK/cli.err"
  expect 1 "worker with a shared object that is not a plugin" worker --plugin libm.so.6 --redis "$URL" \
    --key-file "$key"
  check "the error says it is not a redcoll plugin" grep -q 'not a redcoll plugin' "$WORK/cli.err"
  expect 1 "worker loading the same plugin twice" worker --plugin "$PLUGIN" --plugin "$PLUGIN" --redis "$URL" \
    --key-file "$key"
  check "the error names the kernel registered twice" grep -q "already registered" "$WORK/cli.err"
  expect 1 "worker without a key" worker --plugin "$PLUGIN" --redis "$URL"
  expect 2 "worker without a Redis address" worker --plugin "$PLUGIN" --key-file "$key"
  # --linger: an idle plugin worker exits 0 by itself
  t0=$(now_ms)
  expect 0 "worker --linger 0.5" worker --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue idle \
    --linger 0.5
  el=$(( $(now_ms) - t0 ))
  check "--linger 0.5 waited about that long ($el ms)" [ "$el" -ge 400 ]
}

# counted QUEUE PID N: worker PID reports N tasks done.
counted() {
  local out
  out=$(timeout 10 "$RCLI" workers --redis "$URL" --queue "$1" --json 2>/dev/null) || return 1
  printf '%s\n' "$out" | grep -F "\"pid\":$2," | grep -qF "\"done\":$3,"
}

children_of() { pgrep -P "$1" | sort; }
nchildren() { [ "$(children_of "$1" | wc -l)" = "$2" ]; }
replaced() { # SUP OLDPID: two children, none of them OLDPID
  local c
  c=$(children_of "$1")
  [ "$(wc -l <<<"$c")" = 2 ] && ! grep -qx "$2" <<<"$c"
}

case_ops_supervisor() {
  need_redis
  local key=$WORK/key s kids victim new out k t0 el
  make_key "$key"
  bg "$RCLI" worker -n 2 --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue sq 2>"$WORK/sup.log"
  s=$BG
  wait_for "2 supervised workers" 20 nchildren "$s" 2 || dump "$WORK/sup.log"
  kids=$(children_of "$s")
  log "supervisor $s, workers $(tr '\n' ' ' <<<"$kids")"
  # shellcheck disable=SC2086
  wait_for "both workers in the registry" 20 registered sq $kids
  victim=$(head -n 1 <<<"$kids")
  kill -KILL "$victim"
  wait_for "a new worker replacing $victim" 10 replaced "$s" "$victim" || dump "$WORK/sup.log"
  new=$(children_of "$s" | grep -vxF "$kids" | head -n 1)
  check "a new worker pid appeared ($new)" [ -n "$new" ]
  [ -n "$new" ] && wait_for "the new worker $new in the registry" 20 registered sq "$new"
  check "the supervisor logged the crash and the restart" grep -q "worker $victim killed by signal 9" "$WORK/sup.log"
  out=$(REDCOLL_URL=$URL REDCOLL_KEY_FILE=$key timeout -k 2 30 "$MASTER" sq sum 1000 10 2>"$WORK/m.err")
  check "the supervised workers run a job exactly ($out)" contains "$out" '"exact":true' || dump "$WORK/m.err"
  kids=$(children_of "$s")
  kill -TERM "$s"
  if wait_gone "$s" 15; then
    check "the supervisor exits 0 on SIGTERM (status $STATUS)" [ "$STATUS" = 0 ] || dump "$WORK/sup.log"
  else
    fail "supervisor still running 15 s after SIGTERM"
    dump "$WORK/sup.log"
  fi
  for k in $kids; do
    check "worker $k stopped with the supervisor" dead "$k"
  done
  check "no child left" [ -z "$(children_of "$s")" ]
  check "the workers stopped cleanly (status 0)" [ "$(grep -c 'stopped (exited with status 0)' "$WORK/sup.log")" = 2 ]

  # children that exit 0 (here: --linger) are not restarted; the supervisor then exits 0
  t0=$(now_ms)
  bg "$RCLI" worker -n 2 --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue idle --linger 0.5 \
    2>"$WORK/sup2.log"
  s=$BG
  if wait_gone "$s" 15; then
    el=$(( $(now_ms) - t0 ))
    check "supervisor of lingering workers exits 0 by itself (status $STATUS, $el ms)" [ "$STATUS" = 0 ]
    check "lingering workers were not restarted" [ "$(grep -c 'started worker' "$WORK/sup2.log")" = 2 ] ||
      dump "$WORK/sup2.log"
  else
    fail "supervisor of --linger 0.5 workers still running after 15 s"
    dump "$WORK/sup2.log"
  fi
  # a supervisor whose plugin does not load starts nothing
  expect 1 "worker -n 2 with a missing plugin" worker -n 2 --plugin "$WORK/nope.so" --redis "$URL" --key-file "$key"
}

case_ops_usage() {
  local c key=$WORK/key
  make_key "$key"
  expect 0 "--help" --help
  for c in workers jobs tasks stats watch cancel worker; do
    check "--help lists $c" has "$OUT" $'\n'"  $c "
  done
  for c in workers jobs tasks stats watch cancel worker; do
    expect 0 "$c --help" "$c" --help
    check "$c --help starts with its usage" has "${OUT:0:40}" "usage: redcoll $c"
    check "$c --help documents the exit status" has "$OUT" 'Exit status'
    check "$c --help documents REDCOLL_URL" has "$OUT" 'REDCOLL_URL'
    expect 2 "$c --bogus" "$c" --bogus
    check "$c --bogus names the option" has "$(<"$WORK/cli.err")" '--bogus'
  done
  for c in workers jobs tasks stats watch cancel; do
    expect 2 "$c --queue without a value" "$c" 0123456789abcdef --queue
  done
  expect 2 "jobs with a stray argument" jobs stray --redis redis://127.0.0.1:1
  check "the stray argument is named" grep -q 'stray' "$WORK/cli.err"
  expect 2 "tasks without JOB" tasks --redis redis://127.0.0.1:1
  expect 2 "tasks with a malformed JOB" tasks xyz --redis redis://127.0.0.1:1
  expect 2 "tasks with two JOBs" tasks 0123456789abcdef 0123456789abcdef --redis redis://127.0.0.1:1
  expect 2 "tasks --state bogus" tasks 0123456789abcdef --state bogus --redis redis://127.0.0.1:1
  expect 2 "workers --state (not its option)" workers --state done --redis redis://127.0.0.1:1
  expect 2 "watch --interval abc" watch --interval abc --redis redis://127.0.0.1:1
  expect 2 "watch --count 0" watch --count 0 --redis redis://127.0.0.1:1
  expect 2 "stats --window 0" stats --window 0 --redis redis://127.0.0.1:1
  expect 2 "jobs with a bad queue name" jobs --queue 'bad queue*' --redis redis://127.0.0.1:1
  expect 2 "jobs with a malformed URL" jobs --redis http://nowhere
  expect 2 "jobs without any Redis address" jobs
  check "the message says how to give one" grep -q 'REDCOLL_URL' "$WORK/cli.err"
  expect 1 "jobs with nothing listening" jobs --redis redis://127.0.0.1:1
  check "the connection error names the address" grep -qF '127.0.0.1:1' "$WORK/cli.err"
  REDCOLL_URL=redis://127.0.0.1:1 expect 1 "stats with REDCOLL_URL, nothing listening" stats
  check "REDCOLL_URL is used" grep -qF '127.0.0.1:1' "$WORK/cli.err"
  expect 1 "jobs with an unreadable key file" jobs --redis redis://127.0.0.1:1 --key-file "$WORK/nokey"
  expect 2 "worker without --plugin" worker --redis redis://127.0.0.1:1 --key-file "$key"
  check "the message asks for --plugin" grep -q -- '--plugin' "$WORK/cli.err"
  expect 2 "worker -n 0" worker -n 0 --plugin "$PLUGIN"
  expect 2 "worker -n x" worker -n x --plugin "$PLUGIN"
  expect 2 "worker --threads 0" worker --threads 0 --plugin "$PLUGIN"
  expect 2 "worker --lease abc" worker --lease abc --plugin "$PLUGIN"
  expect 2 "worker --poll abc" worker --poll abc --plugin "$PLUGIN"
  check "the message names --poll" grep -q -- "--poll: 'abc'" "$WORK/cli.err"
  expect 2 "worker --poll 0" worker --poll 0 --plugin "$PLUGIN"
  check "the message gives the range" grep -q "between 0.001 and 5 seconds" "$WORK/cli.err"
  expect 2 "worker with a stray argument" worker --plugin "$PLUGIN" stray
}

# --poll: an idle worker blocks that long per poll, so it asks Redis about
# once a slice (once a second by default), and exits on SIGTERM at once,
# whatever its slice.
case_ops_poll() {
  need_redis
  local key=$WORK/key w calls t0 el
  make_key "$key"
  bg "$RCLI" worker --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue pp --poll 1 2>"$WORK/pw.log"
  w=$BG
  wait_for "the worker in the registry" 20 registered pp "$w" || dump "$WORK/pw.log"
  sleep 1
  rcli CONFIG RESETSTAT >/dev/null
  sleep 4
  calls=$(rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_xreadgroup:calls=\([0-9]*\),.*/\1/p')
  check "idle with --poll 1: ${calls:-0} polls in 4 s (about 4)" \
    cond '[ "${calls:-0}" -ge 2 ] && [ "${calls:-0}" -le 7 ]'
  t0=$(now_ms)
  kill -TERM "$w"
  if wait_gone "$w" 10; then
    el=$(( $(now_ms) - t0 ))
    check "exits 0 on SIGTERM (status $STATUS)" [ "$STATUS" = 0 ]
    check "sees SIGTERM at once ($el ms)" [ "$el" -le 1500 ]
  else
    fail "the --poll 1 worker still runs 10 s after SIGTERM"
  fi
}

# Deliveries leave finished entries in the task stream for a later trim
# (lib/queue.c): stats must count them as neither queued nor running nor
# unreadable.  The stream is laid out by hand: one entry held by a stalled
# consumer, eight delivered and acked (done, not yet trimmed), two never
# handed out.
case_ops_stats_trimmed() {
  need_redis
  local s="rc:{tq}:tasks" i
  rcli XGROUP CREATE "$s" w 0 MKSTREAM >/dev/null
  rcli XADD "$s" 1000-0 e held >/dev/null
  for i in 0 1 2 3 4 5 6 7; do rcli XADD "$s" "1100-$i" e done >/dev/null; done
  rcli XREADGROUP GROUP w stalled COUNT 1 STREAMS "$s" '>' >/dev/null
  rcli XREADGROUP GROUP w w1 COUNT 8 STREAMS "$s" '>' >/dev/null
  rcli XACK "$s" w 1100-0 1100-1 1100-2 1100-3 1100-4 1100-5 1100-6 1100-7 >/dev/null
  rcli XADD "$s" 2000-0 e queued >/dev/null
  rcli XADD "$s" 2000-1 e queued >/dev/null
  expect 0 "stats --json over finished, untrimmed entries" stats --redis "$URL" --queue tq --json
  check "stats: stream_length 11 ($OUT)" [ "$(json_field stream_length "$OUT")" = 11 ]
  check "stats: tasks_queued 2, the undelivered ones ($OUT)" [ "$(json_field tasks_queued "$OUT")" = 2 ]
  check "stats: tasks_running 1, the held one" [ "$(json_field tasks_running "$OUT")" = 1 ]
  check "stats: unreadable_tasks 3: the acked entries are not read at all" \
    [ "$(json_field unreadable_tasks "$OUT")" = 3 ]
}

# A supervisor whose stderr reader has gone (a log pipe that died) keeps
# supervising: each message it writes fails with EPIPE instead of killing it
# with SIGPIPE (status 141) and leaving its workers unsupervised.
case_ops_supervisor_stderr_gone() {
  need_redis
  local key=$WORK/key s kids victim out
  make_key "$key"
  bg "$RCLI" worker -n 2 --plugin "$PLUGIN" --redis "$URL" --key-file "$key" --queue sg 2> >(exec true)
  s=$BG
  if ! wait_for "2 supervised workers" 20 nchildren "$s" 2; then
    alive "$s" || { wait_gone "$s" 1; fail "the supervisor died writing to its closed stderr (status $STATUS)"; }
    return
  fi
  kids=$(children_of "$s")
  # shellcheck disable=SC2086
  wait_for "both workers in the registry" 20 registered sg $kids
  sleep 0.2 # the reader has long exited: the next message meets a closed pipe
  victim=$(head -n 1 <<<"$kids")
  kill -KILL "$victim"
  if ! wait_for "a new worker replacing $victim" 10 replaced "$s" "$victim"; then
    alive "$s" || { wait_gone "$s" 1; fail "the supervisor died reporting the crash to its closed stderr (status $STATUS)"; }
    return
  fi
  out=$(REDCOLL_URL=$URL REDCOLL_KEY_FILE=$key timeout -k 2 30 "$MASTER" sg sum 1000 10 2>"$WORK/m.err")
  check "the supervised workers run a job exactly ($out)" contains "$out" '"exact":true' || dump "$WORK/m.err"
  kids=$(children_of "$s")
  kill -TERM "$s"
  if wait_gone "$s" 15; then
    check "the supervisor exits 0 on SIGTERM with its stderr closed (status $STATUS)" [ "$STATUS" = 0 ]
  else
    fail "supervisor still running 15 s after SIGTERM"
  fi
  for k in $kids; do
    check "worker $k stopped with the supervisor" dead "$k"
  done
}

case "$CASE" in
ops_inspect | ops_watch | ops_cancel | ops_authfail | ops_plugin | ops_supervisor | ops_supervisor_stderr_gone | ops_usage | ops_stats_trimmed | ops_poll) "case_$CASE" ;;
*) echo "test_cli_ops.sh: unknown case '$CASE'" >&2; exit 2 ;;
esac
finish
