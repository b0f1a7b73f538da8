#!/usr/bin/env bash
# test_deploy.sh - checks of deploy/: the systemd worker unit, the cloud-init user-data and the scripts inside it.
#
# usage: test_deploy.sh CASE SOURCE_DIR PATH/TO/pi PATH/TO/redcoll   (one CTest test per CASE, see deploy.cmake)
#
# Why: deployment files are only read by machines we do not have in CI (a
# systemd PID 1, cloud-init on EC2), so mistakes in them surface on the day
# a fleet boots.  Each case checks what can be checked here without
# installing anything: systemd-analyze verify on the units (the spot watcher
# unit rendered with its ExecStart in a temp dir); the worker unit's
# ExecStart rendered the way systemd expands it (%i, %%, $$) and run with a
# stub pi for several instance names; cloud-init's schema when cloud-init is
# installed, else the YAML parsed with python3 and every shell script in it
# (write_files and runcmd) checked with bash -n; the spot watcher run against
# a fake metadata service; and the unit's command line and the user-data's
# worker.env run for real: two workers on a private redis-server (CTest
# fixture) compute a job bit-identical to pi --local, drain on SIGTERM, and
# hand a long task back after REDCOLL_DRAIN_TIMEOUT.  A case whose tool is
# missing exits 77 (CTest: skipped) and says why.
set -uo pipefail
CASE=${1:?case} SRC=${2:?source dir} PI=${3:-} CLI=${4:-}
UNIT="$SRC/deploy/systemd/redcoll-worker@.service"
YAML="$SRC/deploy/cloud-init/user-data.yaml"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rc-deploy.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILS=0
log() { echo "test_deploy[$CASE]: $*"; }
fail() { echo "test_deploy[$CASE]: FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
skip() { echo "test_deploy[$CASE]: SKIPPED: $*"; exit 77; }
finish() { [ "$FAILS" = 0 ] && { log "ok"; exit 0; }; log "$FAILS failure(s)"; exit 1; }

# python3 with PyYAML: the system one first (a version-manager shim on PATH
# can take seconds per start), else whatever python3 PATH has.
PY=
for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
  [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import yaml' 2>/dev/null && { PY=$p; break; }
done
PY_ANY=${PY:-$(command -v python3 2>/dev/null)}
have_pyyaml() { [ -n "$PY" ]; }

# extract_yaml DIR: write every write_files entry of the user-data to DIR/files/<path>
# (mode kept in DIR/files.modes) and the runcmd entries to DIR/runcmd.sh.
extract_yaml() {
  "$PY" - "$YAML" "$1" <<'EOF'
import os, sys, shlex, yaml
src, out = sys.argv[1], sys.argv[2]
text = open(src).read()
if not text.startswith("#cloud-config\n"):
    sys.exit("user-data must start with the line #cloud-config")
doc = yaml.safe_load(text)
if not isinstance(doc, dict):
    sys.exit("user-data is not a mapping")
with open(os.path.join(out, "files.modes"), "w") as modes:
    for f in doc.get("write_files", []):
        p = os.path.join(out, "files", f["path"].lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as fh:
            fh.write(f.get("content", ""))
        modes.write("%s %s %s\n" % (f["path"], f.get("permissions", "-"), f.get("owner", "-")))
with open(os.path.join(out, "runcmd.sh"), "w") as fh:
    fh.write("#!/bin/sh\n")
    for c in doc.get("runcmd", []):
        fh.write((" ".join(shlex.quote(str(a)) for a in c) if isinstance(c, list) else str(c)) + "\n")
print("packages: " + " ".join(doc.get("packages", [])))
EOF
}

# render_execstart INSTANCE: the worker unit's ExecStart as systemd would run it,
# one NUL-terminated word per argument.
render_execstart() {
  "$PY_ANY" - "$UNIT" "$1" <<'EOF'
import re, shlex, sys
unit, inst = sys.argv[1], sys.argv[2]
lines = [l[len("ExecStart="):] for l in open(unit).read().splitlines() if l.startswith("ExecStart=")]
if len(lines) != 1:
    sys.exit("expected one ExecStart= line, found %d" % len(lines))
line = lines[0]
def spec(m):
    c = m.group(1)
    if c == "%": return "%"
    if c == "i": return inst
    sys.exit("unexpected specifier %%%s in ExecStart" % c)
line = re.sub(r"%(.)", spec, line)
def dollar(m):
    if m.group(0) == "$$": return "$"
    sys.exit("ExecStart uses %s: systemd would expand it from the environment file, not the shell" % m.group(0))
line = re.sub(r"\$\$|\$\{?\w+\}?", dollar, line)
for w in shlex.split(line):
    sys.stdout.write(w + "\0")
EOF
}

# env_file FILE: an EnvironmentFile= as `env` arguments (KEY=VALUE, comments skipped).
env_file() {
  sed -e 's/^[[:space:]]*//' -e '/^#/d' -e '/^$/d' "$1"
}

case_unit_verify() {
  command -v systemd-analyze >/dev/null 2>&1 || skip "systemd-analyze not installed (apt-get install systemd)"
  mkdir -p "$WORK/units" "$WORK/bin"
  cp "$UNIT" "$WORK/units/"
  local units=("$WORK/units/redcoll-worker@.service")
  if have_pyyaml; then
    extract_yaml "$WORK" >/dev/null || fail "cannot extract the user-data"
    local watch="$WORK/files/etc/systemd/system/redcoll-spot-watch.service"
    if [ -f "$watch" ]; then
      # rendered copy: its ExecStart must exist for verify
      cp "$WORK/files/usr/local/sbin/redcoll-spot-watch" "$WORK/bin/" && chmod +x "$WORK/bin/redcoll-spot-watch"
      sed "s|^ExecStart=/usr/local/sbin/|ExecStart=$WORK/bin/|" "$watch" >"$WORK/units/redcoll-spot-watch.service"
      units+=("$WORK/units/redcoll-spot-watch.service")
    else
      fail "user-data writes no /etc/systemd/system/redcoll-spot-watch.service"
    fi
  else
    log "python3 with PyYAML missing: only the worker unit is verified"
  fi
  local u out rc
  for u in "${units[@]}"; do
    out=$(systemd-analyze verify "$u" 2>&1)
    rc=$?
    # every line about our units is a finding (verify exits 0 on unknown keys)
    out=$(grep -E "redcoll|$WORK" <<<"$out")
    [ "$rc" = 0 ] && [ -z "$out" ] && log "systemd-analyze verify $(basename "$u"): clean" ||
      fail "systemd-analyze verify $(basename "$u") (status $rc): $out"
  done
}

case_unit_execstart() {
  [ -n "$PY_ANY" ] || skip "python3 not installed"
  local u=$UNIT
  # the settings the stop sequence depends on
  grep -qx 'KillSignal=SIGTERM' "$u" || fail "KillSignal is not SIGTERM"
  grep -qx 'KillMode=mixed' "$u" || fail "KillMode is not mixed (SIGTERM to pi only, SIGKILL to all)"
  grep -qx 'Restart=on-failure' "$u" || fail "Restart is not on-failure"
  grep -qx 'EnvironmentFile=/etc/redcoll/worker.env' "$u" || fail "EnvironmentFile is not /etc/redcoll/worker.env"
  grep -qx 'User=redcoll' "$u" || fail "User is not redcoll (the key file's owner)"
  local stop drain
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$u")
  drain=$(grep '^ExecStart=' "$u" | sed -n 's/.*REDCOLL_DRAIN_TIMEOUT:-\([0-9]*\).*/\1/p')
  if [ -n "$stop" ] && [ -n "$drain" ] && [ "$stop" -ge $((drain + 10)) ]; then
    log "TimeoutStopSec=$stop leaves 10 s or more after the default drain timeout $drain s"
  else
    fail "TimeoutStopSec ($stop) must exceed the default drain timeout ($drain) by 10 s or more"
  fi
  # ExecStart as systemd runs it, with a stub pi that prints its arguments
  printf '#!/bin/sh\nfor a in "$@"; do printf "[%%s]" "$a"; done; echo\n' >"$WORK/pi-stub"
  chmod +x "$WORK/pi-stub"
  local inst want got argv
  while IFS='|' read -r inst want; do
    mapfile -d '' argv < <(render_execstart "$inst") || { fail "cannot render ExecStart for $inst"; continue; }
    got=$(env -i PATH=/usr/bin:/bin REDCOLL_PI="$WORK/pi-stub" "${argv[@]}" 2>&1)
    [ "$got" = "$want" ] && log "redcoll-worker@$inst.service runs pi $got" ||
      fail "redcoll-worker@$inst.service runs pi $got, expected $want"
  done <<'EOF'
pi|[--worker][--queue][pi][--drain-timeout][90]
pi:1|[--worker][--queue][pi][--drain-timeout][90]
pi:12|[--worker][--queue][pi][--drain-timeout][90]
jobs.high:7:2|[--worker][--queue][jobs.high:7][--drain-timeout][90]
a:b|[--worker][--queue][a:b][--drain-timeout][90]
x-y_z|[--worker][--queue][x-y_z][--drain-timeout][90]
EOF
  mapfile -d '' argv < <(render_execstart "pi:3")
  got=$(env -i PATH=/usr/bin:/bin REDCOLL_PI="$WORK/pi-stub" REDCOLL_DRAIN_TIMEOUT=30 \
        REDCOLL_WORKER_ARGS="--threads 2 --lease 10 -q" "${argv[@]}" 2>&1)
  want='[--worker][--queue][pi][--drain-timeout][30][--threads][2][--lease][10][-q]'
  [ "$got" = "$want" ] && log "REDCOLL_DRAIN_TIMEOUT and REDCOLL_WORKER_ARGS reach pi: $got" ||
    fail "with REDCOLL_DRAIN_TIMEOUT=30 REDCOLL_WORKER_ARGS='--threads 2 --lease 10 -q': $got, expected $want"
}

case_cloud_init() {
  if command -v cloud-init >/dev/null 2>&1; then
    local out
    out=$(cloud-init schema --config-file "$YAML" 2>&1) && log "cloud-init schema: $out" || fail "cloud-init schema: $out"
  else
    log "cloud-init not installed: schema not checked; YAML and scripts checked instead"
  fi
  have_pyyaml || skip "python3 with PyYAML not installed: cannot parse the user-data"
  local pk
  pk=$(extract_yaml "$WORK") || { fail "user-data is not well-formed YAML / cloud-config"; return; }
  log "user-data parses; $pk"
  local p
  for p in build-essential cmake pkg-config libhiredis-dev libsodium-dev curl; do
    grep -qw -- "$p" <<<"$pk" || fail "package $p not installed by the user-data"
  done
  # secrets 0600, workers' settings where the unit reads them
  while read -r path mode _; do
    case $path in
      /etc/redcoll/worker.key | /etc/redcoll/url) [ "$mode" = 0600 ] || fail "$path has mode $mode, not 0600" ;;
    esac
  done <"$WORK/files.modes"
  local envf="$WORK/files/etc/redcoll/worker.env"
  grep -qx 'REDCOLL_URL_FILE=/etc/redcoll/url' "$envf" || fail "worker.env does not set REDCOLL_URL_FILE=/etc/redcoll/url"
  grep -qx 'REDCOLL_KEY_FILE=/etc/redcoll/worker.key' "$envf" || fail "worker.env does not set REDCOLL_KEY_FILE"
  # every shell script in it parses
  local f n=0
  while IFS= read -r -d '' f; do
    if head -n1 "$f" | grep -q '^#!.*\(bash\|/sh\)'; then
      bash -n "$f" 2>"$WORK/err" && n=$((n + 1)) || fail "bash -n ${f#"$WORK/files"}: $(cat "$WORK/err")"
      if command -v shellcheck >/dev/null 2>&1; then
        shellcheck -S warning "$f" >"$WORK/err" 2>&1 || fail "shellcheck ${f#"$WORK/files"}: $(cat "$WORK/err")"
      fi
    fi
  done < <(find "$WORK/files" -type f -print0)
  bash -n "$WORK/runcmd.sh" 2>"$WORK/err" && n=$((n + 1)) || fail "bash -n runcmd: $(cat "$WORK/err")"
  [ "$n" -ge 3 ] && log "$n shell scripts pass bash -n (write_files and runcmd)" || fail "only $n scripts found"
  grep -q 'redcoll-install' "$WORK/runcmd.sh" || fail "runcmd does not run redcoll-install"
  # what the install script takes from the tarball exists in the source tree
  local inst="$WORK/files/usr/local/sbin/redcoll-install" rel
  for rel in $(grep -o '\$src/[A-Za-z0-9_./@-]*' "$inst" | sed 's|^\$src/||' | sort -u); do
    case $rel in build | build/*) continue ;; esac
    [ -e "$SRC/$rel" ] || fail "redcoll-install uses \$src/$rel, which the source tree does not have"
  done
  # every placeholder is documented in the header, and none is left unused
  local ph
  for ph in $(grep -o '@@[A-Z0-9_]*@@' "$YAML" | sort -u); do
    [ "$(grep -c -- "$ph" "$YAML")" -ge 2 ] || fail "placeholder $ph is used but not documented (or the reverse)"
  done
}

case_spot_watch() {
  have_pyyaml || skip "python3 with PyYAML not installed: cannot extract the watcher"
  extract_yaml "$WORK" >/dev/null || { fail "cannot extract the user-data"; return; }
  local watch="$WORK/files/usr/local/sbin/redcoll-spot-watch"
  [ -f "$watch" ] || { fail "user-data has no /usr/local/sbin/redcoll-spot-watch"; return; }
  mkdir -p "$WORK/stub"
  # fake IMDSv2: a token, then 404 twice, then the interruption notice
  cat >"$WORK/stub/curl" <<EOF
#!/bin/bash
url=\${@: -1}
case \$url in
  */latest/api/token) echo TOKEN; exit 0 ;;
  */spot/instance-action)
    [ "\$*" = "\${*/X-aws-ec2-metadata-token: TOKEN/}" ] && { echo 401; exit 0; }
    n=\$(cat "$WORK/polls" 2>/dev/null || echo 0); echo \$((n + 1)) >"$WORK/polls"
    [ "\$n" -ge 2 ] && echo 200 || echo 404 ;;
  *) exit 7 ;;
esac
EOF
  printf '#!/bin/sh\necho "$*" >>"%s/systemctl.log"\n' "$WORK" >"$WORK/stub/systemctl"
  chmod +x "$WORK/stub/curl" "$WORK/stub/systemctl"
  local out rc
  out=$(PATH="$WORK/stub:$PATH" REDCOLL_SPOT_POLL=0.1 timeout 20 bash "$watch" 2>&1)
  rc=$?
  [ "$rc" = 0 ] || fail "redcoll-spot-watch exited $rc: $out"
  [ "$(cat "$WORK/polls" 2>/dev/null)" = 3 ] || fail "expected 3 polls (404, 404, 200), got $(cat "$WORK/polls" 2>/dev/null)"
  [ "$(cat "$WORK/systemctl.log" 2>/dev/null)" = "stop redcoll-worker@*.service" ] &&
    log "notice on poll 3 -> systemctl $(cat "$WORK/systemctl.log"); watcher said: $(tr '\n' ' ' <<<"$out")" ||
    fail "on the notice the watcher ran systemctl '$(cat "$WORK/systemctl.log" 2>/dev/null)', expected 'stop redcoll-worker@*.service'"
}

# wait_exit PID SECONDS: wait for a child; STATUS is its exit status.
wait_exit() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; STATUS=$?; return 0; }
    sleep 0.1
  done
  return 1
}

case_worker_run() {
  [ -x "$PI" ] && [ -x "$CLI" ] || { fail "usage: test_deploy.sh worker_run SRC PI REDCOLL"; return; }
  have_pyyaml || skip "python3 with PyYAML not installed: cannot render the unit and worker.env"
  [ -n "${RC_TEST_REDIS_DIR:-}" ] && [ -f "$RC_TEST_REDIS_DIR/url" ] || { fail "no redis fixture (RC_TEST_REDIS_DIR)"; return; }
  extract_yaml "$WORK" >/dev/null || { fail "cannot extract the user-data"; return; }
  # /etc/redcoll of the user-data, moved into WORK, with a real key and URL
  local etc="$WORK/etc" queue="deploy$$"
  mkdir -p "$etc"
  "$CLI" keygen "$etc/worker.key" 2>/dev/null || { fail "redcoll keygen failed"; return; }
  (umask 077 && cp "$RC_TEST_REDIS_DIR/url" "$etc/url")
  mapfile -t envs < <(env_file "$WORK/files/etc/redcoll/worker.env" | sed "s|/etc/redcoll/|$etc/|")
  log "worker.env: ${envs[*]}"
  local base=(env -i PATH="$PATH" HOME="$WORK" "${envs[@]}" REDCOLL_PI="$PI")
  local a1 a2 w1 w2
  mapfile -d '' a1 < <(render_execstart "$queue:1")
  mapfile -d '' a2 < <(render_execstart "$queue:2")
  "${base[@]}" "${a1[@]}" 2>"$WORK/w1.log" &
  w1=$!
  "${base[@]}" "${a2[@]}" 2>"$WORK/w2.log" &
  w2=$!
  PIDS+=("$w1" "$w2")
  # a master using the same files computes the same bits as pi --local
  local job=(--queue "$queue" --samples 4e6 --tasks 8 --seed 7 --json) out ref
  out=$(env REDCOLL_URL_FILE="$etc/url" REDCOLL_KEY_FILE="$etc/worker.key" timeout 60 "$PI" "${job[@]}" -q 2>"$WORK/m.log")
  ref=$("$PI" --local --samples 4e6 --tasks 8 --seed 7 --threads 1 --json)
  local hits refhits seen
  hits=$(grep -o '"hits":[0-9]*' <<<"$out") refhits=$(grep -o '"hits":[0-9]*' <<<"$ref")
  seen=$(grep -o '"workers_seen":[0-9]*' <<<"$out")
  [ -n "$hits" ] && [ "$hits" = "$refhits" ] && log "2 unit workers: $hits $seen, same as pi --local" ||
    fail "master through the unit's workers: '$out' ($(cat "$WORK/m.log")), pi --local: $refhits"
  # systemctl stop: SIGTERM to pi; idle workers exit 0 at once
  kill -TERM "$w1" "$w2"
  local w
  for w in "$w1" "$w2"; do
    if wait_exit "$w" 10; then
      [ "$STATUS" = 0 ] && log "worker $w: SIGTERM -> exit 0" || fail "worker $w exited $STATUS on SIGTERM"
    else
      fail "worker $w still running 10 s after SIGTERM"
    fi
  done
  # a long task: SIGTERM drains for REDCOLL_DRAIN_TIMEOUT (1 s), then hands it back and exits 0
  local a3 w3 m
  mapfile -d '' a3 < <(render_execstart "$queue:3")
  "${base[@]}" REDCOLL_DRAIN_TIMEOUT=1 "${a3[@]}" 2>"$WORK/w3.log" &
  w3=$!
  PIDS+=("$w3")
  env REDCOLL_URL_FILE="$etc/url" REDCOLL_KEY_FILE="$etc/worker.key" \
    "$PI" --queue "$queue" --samples 1e12 --tasks 1 -q >/dev/null 2>"$WORK/m2.log" &
  m=$!
  PIDS+=("$m")
  sleep 2 # the worker takes the single task at once; it runs for minutes
  local t0=$SECONDS
  kill -TERM "$w3"
  if wait_exit "$w3" 15; then
    [ "$STATUS" = 0 ] || fail "worker exited $STATUS after the drain timeout"
    grep -q 'handed 1 task(s) back' "$WORK/w3.log" &&
      log "long task: SIGTERM, drain timeout 1 s, task handed back, exit 0 after $((SECONDS - t0)) s (TimeoutStopSec not reached)" ||
      fail "worker exited without handing its task back: $(cat "$WORK/w3.log")"
  else
    fail "worker still running 15 s after SIGTERM with REDCOLL_DRAIN_TIMEOUT=1"
  fi
  kill -INT "$m" 2>/dev/null
  wait_exit "$m" 10 || fail "master did not stop on SIGINT"
}

case "$CASE" in
  unit_verify | unit_execstart | cloud_init | spot_watch | worker_run) "case_$CASE" ;;
  *) echo "test_deploy.sh: unknown case $CASE" >&2; exit 2 ;;
esac
finish
