# cli-common.sh - helpers shared by test_pi.sh and test_cli.sh (sourced, not run).
#
# The CLI tests drive real processes against a real redis-server, so what
# goes wrong is mostly timing.  Every wait here is a poll with a deadline: a
# slow box only makes a test slower, while a hang becomes a named failure
# instead of an anonymous CTest timeout.  Every process a test starts is
# remembered (and everything run from a copy of a binary under the test's
# private directory can be found by that path), so a test that fails half way
# still leaves nothing running and no files behind.  Only bash, coreutils,
# procps, grep, sed, awk and redis-cli are used.

set -u

CASE=${1:-}
PI=${2:-}
RCLI=${3:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rc-cli.XXXXXX") || { echo "mktemp failed" >&2; exit 1; }
PIDS=()
FAILS=0
CHECKS=0

now_ms() { date +%s%3N; }
T_START=$(now_ms)

log() { echo "[$(( $(now_ms) - T_START )) ms] $*"; }

fail() {
  FAILS=$((FAILS + 1))
  echo "FAIL: $*" >&2
}

# check DESCRIPTION COMMAND...: run COMMAND, count a failure if it fails.
check() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then
    return 0
  fi
  fail "$what"
  return 1
}

# Print files (worker and master logs) to help diagnose a failure.
dump() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "---- $f" >&2
    tail -n 30 "$f" >&2
  done
}

# Processes whose command line contains PATTERN (by pid).
procs_matching() { pgrep -f -- "$1" 2>/dev/null; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null
  done
  # anything still running from a copy under WORK was started by this test
  for p in $(procs_matching "$WORK"); do
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
  if [ "$FAILS" -gt 0 ]; then
    echo "$CASE: $FAILS of $CHECKS checks FAILED ($(( $(now_ms) - T_START )) ms)" >&2
    exit 1
  fi
  echo "$CASE: $CHECKS checks passed ($(( $(now_ms) - T_START )) ms)"
  exit 0
}

# alive PID: running and not a zombie.
alive() {
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s#Z}" = "$s" ]
}

# wait_gone PID SECONDS: wait for a child of this shell to exit; its status
# goes to STATUS.  Returns 1 (STATUS=timeout) if still running at the deadline.
STATUS=
wait_gone() {
  local pid=$1 end=$(( $(now_ms) + $2 * 1000 ))
  while alive "$pid"; do
    if [ "$(now_ms)" -gt "$end" ]; then
      STATUS=timeout
      return 1
    fi
    sleep 0.05
  done
  { wait "$pid"; } 2>/dev/null
  STATUS=$?
  return 0
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local what=$1 end=$(( $(now_ms) + $2 * 1000 ))
  shift 2
  until "$@"; do
    if [ "$(now_ms)" -gt "$end" ]; then
      fail "timed out waiting for: $what"
      return 1
    fi
    sleep 0.05
  done
  return 0
}

# Run a command in the background, remember it; its pid goes to BG.
BG=
bg() {
  "$@" &
  BG=$!
  PIDS+=("$BG")
}

# json_field NAME TEXT: the raw value of "NAME": in a one-line JSON object.
json_field() { printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
# between X LO HI: LO <= X <= HI.
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
# not_timeout STATUS: not what timeout(1) returns when it had to stop the command.
not_timeout() { [ "$1" != 124 ] && [ "$1" != 137 ]; }
contains() { printf '%s' "$1" | grep -qiF -- "$2"; }

# The CTest fixture's Redis (rc_redis_fixture): URL, PORT, rcli.
need_redis() {
  if [ -z "${RC_TEST_REDIS_DIR:-}" ] || [ ! -f "$RC_TEST_REDIS_DIR/url" ]; then
    echo "$CASE: needs the redis fixture (RC_TEST_REDIS_DIR with a url file)" >&2
    exit 1
  fi
  URL=$(cat "$RC_TEST_REDIS_DIR/url")
  PORT=$(cat "$RC_TEST_REDIS_DIR/port")
}
rcli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }

# Workers past start-up: connections whose last command is the worker's
# XREADGROUP/XAUTOCLAIM poll (so the queue's group exists).
ready_workers() { rcli CLIENT LIST | grep -cE 'cmd=(xreadgroup|xautoclaim)'; }
workers_ready() { [ "$(ready_workers)" -ge "$1" ]; }

# make_key FILE: a key from `redcoll keygen`.
make_key() {
  "$RCLI" keygen "$1" 2>"$WORK/keygen.err" || { dump "$WORK/keygen.err"; fail "redcoll keygen $1"; exit 1; }
}

# Never let a REDCOLL_* variable from the caller's environment steer a case.
unset REDCOLL_URL REDCOLL_KEY_FILE

if [ -z "$CASE" ] || [ ! -x "$PI" ] || [ ! -x "$RCLI" ]; then
  echo "usage: $0 CASE PATH/TO/pi PATH/TO/redcoll" >&2
  exit 2
fi
