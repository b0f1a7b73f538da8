#!/usr/bin/env bash
# pi_compare.sh - redcoll's embedded default against the same pi kernel with OpenMP in one process: efficiency and start-up.
#
# Why: the question a user asks first is "what does redcoll cost me compared
# with running the kernel myself?".  `pi --local --threads 2` is that
# yardstick: the very same kernel code, no Redis, no processes, no MACs.
# Runs alternate (embedded, local, single-thread, embedded, local, ...) so
# that load from elsewhere on a shared machine hits both sides alike, and the
# efficiency is reported both as median(redcoll)/median(local) and as the
# median of the per-round ratios.  The start-up figure is the wall time of a
# tiny embedded job (`pi --samples 1e6 --tasks 2 --workers 2`: private
# redis-server, key file, two worker processes, one job, orderly shutdown),
# the number to hold against `mpirun -n 2` (0.31 s on the reference
# machine).  redcoll's `samples_per_s` covers the job (submit to last
# result); the end-to-end rate, start-up and shutdown included, is printed
# next to it.
#
#   pi_compare.sh [--pi PATH] [--runs R] [--samples S] [--quick] [--json] [PATH/TO/pi]
set -euo pipefail

usage() {
  cat <<'EOF'
usage: pi_compare.sh [--pi PATH] [--runs R] [--samples S] [--startup-samples S] [--quick] [--json] [PATH/TO/pi]
Alternately runs `pi --samples S --workers 2 --threads 1 --json` (redcoll embedded default),
`pi --local --threads 2 --samples S --json` and `pi --local --threads 1`, R times each, and
times R tiny embedded jobs (start-up).  pi defaults to the one next to this script (the
build tree's bench/), else ../build/bench/pi.
  --runs R             rounds (default 5; --quick 3)
  --samples S          samples per run (default 1e10; --quick 1e9)
  --startup-samples S  samples of the start-up job (default 1e6)
  --json               one JSON object on stdout
EOF
}

PI="" RUNS="" SAMPLES="" JSON=0 QUICK=0 STARTUP_SAMPLES=1e6
while [ $# -gt 0 ]; do
  case "$1" in
    --pi) PI=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    --startup-samples) STARTUP_SAMPLES=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    --quick) QUICK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) PI=$1; shift ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-3} SAMPLES=${SAMPLES:-1e9}
else
  RUNS=${RUNS:-5} SAMPLES=${SAMPLES:-1e10}
fi
case "$RUNS" in ''|*[!0-9]*|0) echo "pi_compare.sh: --runs takes a positive integer" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$PI" ]; then
  for c in "$here/pi" "$here/../build/bench/pi"; do
    if [ -x "$c" ]; then PI=$c; break; fi
  done
fi
if [ -z "$PI" ] || [ ! -x "$PI" ]; then
  echo "pi_compare.sh: no pi binary (give --pi PATH; build it with cmake --build build)" >&2
  exit 2
fi

say() { if [ "$JSON" = 1 ]; then echo "$@" >&2; else echo "$@"; fi; }
now() { date +%s.%N; }
# field NAME JSON: a number from pi's one-line JSON
field() { sed -n "s/.*\"$1\":\([-+0-9.eE]*\).*/\1/p" <<<"$2"; }
# run_pi OUTVAR ARGS...: run pi, keep its JSON and the wall time
run_pi() {
  local var=$1; shift
  local t0 t1 out
  t0=$(now)
  if ! out=$("$PI" "$@" --json 2>/tmp/pi_compare.$$.err); then
    echo "pi_compare.sh: '$PI $*' failed:" >&2
    cat /tmp/pi_compare.$$.err >&2
    rm -f /tmp/pi_compare.$$.err
    exit 1
  fi
  t1=$(now)
  rm -f /tmp/pi_compare.$$.err
  printf -v "$var" '%s' "$out"
  printf -v "${var}_wall" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')"
}
# stats "v1 v2 ...": median min max
stats() {
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.6g %.6g %.6g", m, v[1], v[NR] }'
}
cores=$(nproc)
host=$(hostname)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
redis_version=$(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')
load0=$(cut -d' ' -f1 /proc/loadavg)
say "pi_compare: $PI, $RUNS round(s) of $SAMPLES samples; machine $host, $cpu, $cores cores, Redis ${redis_version:-?}, load $load0"

emb_rates="" emb_e2e="" loc_rates="" one_rates="" ratios="" emb_secs="" loc_secs="" startups=""
pis=""
for i in $(seq 1 "$RUNS"); do
  run_pi E --samples "$SAMPLES" --workers 2 --threads 1
  run_pi L --local --threads 2 --samples "$SAMPLES"
  run_pi O --local --threads 1 --samples "$SAMPLES"
  run_pi T --samples "$STARTUP_SAMPLES" --tasks 2 --workers 2
  er=$(field samples_per_s "$E") es=$(field seconds "$E")
  lr=$(field samples_per_s "$L") ls=$(field seconds "$L")
  orate=$(field samples_per_s "$O")
  e2e=$(awk -v s="$SAMPLES" -v w="$E_wall" 'BEGIN { printf "%.6e", s / w }')
  ratio=$(awk -v a="$er" -v b="$lr" 'BEGIN { printf "%.4f", a / b }')
  emb_rates+="$er " emb_e2e+="$e2e " loc_rates+="$lr " one_rates+="$orate " ratios+="$ratio "
  emb_secs+="$es " loc_secs+="$ls " startups+="$T_wall "
  pis+="$(field pi "$E") $(field pi "$L") "
  say "$(printf 'round %d: redcoll %.4e samples/s (job %.3f s, wall %.3f s, %.4e end to end)  local-2 %.4e (%.3f s)  ratio %.3f  local-1 %.4e  start-up job %.3f s' \
    "$i" "$er" "$es" "$E_wall" "$e2e" "$lr" "$ls" "$ratio" "$orate" "$T_wall")"
done
# every run of the same seed and sample count gives the same bits
if [ "$(tr ' ' '\n' <<<"$pis" | grep -v '^$' | sort -u | wc -l)" != 1 ]; then
  echo "pi_compare.sh: the runs disagree on pi: $pis" >&2
  exit 1
fi
read -r em emin emax <<<"$(stats "$emb_rates")"
read -r xm xmin xmax <<<"$(stats "$emb_e2e")"
read -r lm lmin lmax <<<"$(stats "$loc_rates")"
read -r om omin omax <<<"$(stats "$one_rates")"
read -r rm rmin rmax <<<"$(stats "$ratios")"
read -r sm smin smax <<<"$(stats "$startups")"
eff=$(awk -v a="$em" -v b="$lm" 'BEGIN { printf "%.4f", a / b }')
scal=$(awk -v a="$lm" -v b="$om" 'BEGIN { printf "%.4f", a / b }')
# against perfect scaling of the single-thread kernel rate over the 2 workers:
# steadier than local-2 on a loaded machine, where OpenMP barriers wait for
# descheduled threads
ideal=$(awk -v a="$em" -v b="$om" 'BEGIN { printf "%.4f", a / (2 * b) }')
load1=$(cut -d' ' -f1 /proc/loadavg)
if [ "$JSON" = 1 ]; then
  arr() { printf '['; local first=1; for v in $1; do [ $first = 1 ] || printf ','; printf '%s' "$v"; first=0; done; printf ']'; }
  printf '{"benchmark":"pi_compare","pi_binary":"%s","samples":%s,"runs":%s,' "$PI" "$(awk -v s="$SAMPLES" 'BEGIN { printf "%.0f", s }')" "$RUNS"
  printf '"machine":{"host":"%s","cpu":"%s","cores":%s,"redis_version":"%s","load1_at_start":%s},' "$host" "$cpu" "$cores" "${redis_version:-unknown}" "$load0"
  printf '"redcoll":{"samples_per_s":%s,"median":%s,"min":%s,"max":%s,"seconds":%s,"end_to_end_samples_per_s":%s,"end_to_end_median":%s},' \
    "$(arr "$emb_rates")" "$em" "$emin" "$emax" "$(arr "$emb_secs")" "$(arr "$emb_e2e")" "$xm"
  printf '"local2":{"samples_per_s":%s,"median":%s,"min":%s,"max":%s,"seconds":%s},' "$(arr "$loc_rates")" "$lm" "$lmin" "$lmax" "$(arr "$loc_secs")"
  printf '"local1":{"samples_per_s":%s,"median":%s,"min":%s,"max":%s},' "$(arr "$one_rates")" "$om" "$omin" "$omax"
  printf '"efficiency":{"median_over_median":%s,"per_round":%s,"per_round_median":%s,"per_round_min":%s,"per_round_max":%s},' \
    "$eff" "$(arr "$ratios")" "$rm" "$rmin" "$rmax"
  printf '"local2_over_local1":%s,"redcoll_over_2x_local1":%s,' "$scal" "$ideal"
  printf '"startup":{"samples":%s,"wall_s":%s,"median_s":%s,"min_s":%s,"max_s":%s,"mpirun_reference_s":0.31},' \
    "$(awk -v s="$STARTUP_SAMPLES" 'BEGIN { printf "%.0f", s }')" "$(arr "$startups")" "$sm" "$smin" "$smax"
  printf '"load1_at_end":%s}\n' "$load1"
else
  echo
  printf 'redcoll embedded (2 workers x 1 thread): median %.4e samples/s (min %.4e, max %.4e); end to end %.4e\n' "$em" "$emin" "$emax" "$xm"
  printf 'local OpenMP, 2 threads:                 median %.4e samples/s (min %.4e, max %.4e)\n' "$lm" "$lmin" "$lmax"
  printf 'local, 1 thread (kernel rate):           median %.4e samples/s (min %.4e, max %.4e); 2 threads / 1 thread %.3f\n' "$om" "$omin" "$omax" "$scal"
  printf 'efficiency redcoll / local: %.3f (median / median); per-round ratios median %.3f (min %.3f, max %.3f)\n' "$eff" "$rm" "$rmin" "$rmax"
  printf 'redcoll / (2 x single-thread rate): %.3f\n' "$ideal"
  printf 'start-up (pi --samples %s --tasks 2 --workers 2, wall): median %.3f s (min %.3f, max %.3f); mpirun -n 2 reference 0.31 s\n' \
    "$STARTUP_SAMPLES" "$sm" "$smin" "$smax"
  echo "load $load1 at end"
fi
