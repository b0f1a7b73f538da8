#!/usr/bin/env bash
# redis-fixture.sh - start or stop a private redis-server for one CTest test.
#   redis-fixture.sh start DIR   picks a free loopback port, starts the server,
#                                writes DIR/url (redis://127.0.0.1:PORT) and DIR/port
#   redis-fixture.sh stop DIR    stops it and removes DIR
# Tests use a real server, never a mock; each integration test gets its own so
# tests can run in parallel and kill, flush or corrupt freely.
set -u
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
server=${REDCOLL_REDIS_SERVER:-redis-server}
case "$cmd" in
start)
  if [ -f "$dir/redis.pid" ]; then "$0" stop "$dir"; fi
  mkdir -p "$dir"
  for attempt in $(seq 1 30); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    rm -f "$dir/redis.pid"
    "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" >/dev/null 2>&1 || continue
    for i in $(seq 1 100); do
      # PONG alone could come from another server already on that port:
      # the server answering must be the one we started
      if [ -f "$dir/redis.pid" ] &&
         [ "$(redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$(cat "$dir/redis.pid")" ]; then
        echo "redis://127.0.0.1:$port" > "$dir/url"
        echo "$port" > "$dir/port"
        echo "redis-server on port $port (dir $dir)"
        exit 0
      fi
      # the server exits at once when the port is taken: try another
      [ -f "$dir/redis.pid" ] && ! kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null && break
      sleep 0.05
    done
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  done
  echo "could not start $server on a free port; log:" >&2
  cat "$dir/redis.log" >&2 2>/dev/null
  exit 1
  ;;
stop)
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    # nothing here is worth saving, and a graceful shutdown lingers ~1 s
    kill -9 "$pid" 2>/dev/null
    # gone, or a zombie waiting for init to reap it (which can take a second)
    for i in $(seq 1 100); do
      st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
      [ -z "$st" ] || [ "$st" = Z ] && break
      sleep 0.02
    done
  fi
  # and any other server of this dir: one a slow start gave up on before
  # its pid file appeared lives on, daemonized, after its test (seen once
  # under the sanitizer suite: a server idle for minutes after CI)
  real=$(cd "$dir" 2>/dev/null && pwd -P) || real=
  if [ -n "$real" ]; then
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/cwd" 2>/dev/null)" = "$real" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
  fi
  rm -rf "$dir"
  exit 0
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
