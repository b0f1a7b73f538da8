#!/usr/bin/env bash
# test_tls.sh - redcoll over TLS: pi master and workers reach Redis through an stunnel pair.
#
# usage: test_tls.sh CASE PATH/TO/pi PATH/TO/redcoll   (CASE: tls; see security.cmake)
#
# Debian 12's hiredis is 0.14, built without SSL, so redcoll speaks plain
# RESP; TLS on the wire comes from stunnel on both ends.  This test runs the
# recipe below for real on loopback: a self-signed certificate, stunnel as
# the TLS server in front of the CTest fixture's redis-server, a second
# stunnel as a TLS client that verifies that certificate, then pi workers
# and a pi master pointed at the client end.  It checks that the job gives
# the same pi as --local, that the server end really speaks TLS with our
# certificate (openssl s_client) and refuses plaintext RESP (redis-cli ping
# gets no PONG), and that every process started is gone at the end.
#
# ---------------------------------------------------------------------------
# Recipe: redcoll over TLS with stunnel (Debian 12: apt-get install stunnel4)
#
# 1. A certificate for the Redis host (self-signed here; a CA-issued one works
#    the same way with CAfile pointing at the CA):
#
#      openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
#        -subj "/CN=redis.example.org" -addext "subjectAltName=DNS:redis.example.org" \
#        -keyout /etc/stunnel/redis.key -out /etc/stunnel/redis.crt
#      chmod 600 /etc/stunnel/redis.key
#
#    Copy redis.crt (not the key) to every master and worker node.
#
# 2. On the Redis host, Redis listens on loopback only (bind 127.0.0.1, a
#    requirepass or an ACL user as in SECURITY.md) and stunnel accepts TLS
#    for it, /etc/stunnel/redis-server.conf:
#
#      foreground = no            ; "yes" to run it under systemd/a supervisor
#      pid = /run/stunnel-redis.pid
#      [redis-tls]
#      accept = 0.0.0.0:6380
#      connect = 127.0.0.1:6379
#      cert = /etc/stunnel/redis.crt
#      key = /etc/stunnel/redis.key
#      sslVersionMin = TLSv1.2
#
#      stunnel /etc/stunnel/redis-server.conf
#
# 3. On every master and worker node, stunnel is a TLS client on a local
#    port and checks the server's certificate and name,
#    /etc/stunnel/redis-client.conf:
#
#      foreground = no
#      pid = /run/stunnel-redis-client.pid
#      [redis]
#      client = yes
#      accept = 127.0.0.1:6379
#      connect = redis.example.org:6380
#      CAfile = /etc/stunnel/redis.crt
#      verifyChain = yes
#      checkHost = redis.example.org
#      sslVersionMin = TLSv1.2
#
#      stunnel /etc/stunnel/redis-client.conf
#
# 4. redcoll talks to the local end; the password (if any) travels inside TLS:
#
#      pi --worker --redis redis://:PASSWORD@127.0.0.1:6379 --key-file /etc/redcoll.key
#      pi --redis redis://:PASSWORD@127.0.0.1:6379 --key-file /etc/redcoll.key --samples 1e11
#
#    (or REDCOLL_URL_FILE, a 0600 file holding the URL, to keep the password
#    out of ps.)  Check the server end refuses plaintext:
#    `redis-cli -h redis.example.org -p 6380 ping` must not answer PONG.
# ---------------------------------------------------------------------------
. "$(dirname "$0")/cli-common.sh"

if [ "${RC_CLI_SLOW:-0}" = 1 ]; then
  SAMPLES=5e6
else
  SAMPLES=5e7
fi

STUNNEL=$(command -v stunnel || command -v stunnel4 || true)

# A loopback port nobody listens on (a race with other tests is caught when
# stunnel fails to bind: start_stunnel then tries another).
free_port() {
  local p
  while :; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_stunnel NAME BODY: write $WORK/stunnel-NAME.conf (foreground, pid and
# log in WORK) with the service BODY, in which @PORT@ is a fresh free port;
# start stunnel on it and wait until it listens.  Sets SPID and SPORT.
start_stunnel() {
  local name=$1 body=$2 conf=$WORK/stunnel-$1.conf try
  for try in 1 2 3 4 5; do
    SPORT=$(free_port)
    {
      echo "foreground = yes"
      echo "pid = $WORK/stunnel-$name.pid"
      echo "output = $WORK/stunnel-$name.log"
      echo "debug = notice"
      echo "${body//@PORT@/$SPORT}"
    } >"$conf"
    # exec: the pid bg records is stunnel's own; its foreground log goes to a file
    bg sh -c 'exec "$0" "$1" 2>>"$2"' "$STUNNEL" "$conf" "$WORK/stunnel-$name.log"
    SPID=$BG
    local end=$(( $(now_ms) + 10000 ))
    while alive "$SPID" && ! listening "$SPORT" && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
    if alive "$SPID" && listening "$SPORT"; then
      log "stunnel $name: pid $SPID on 127.0.0.1:$SPORT"
      return 0
    fi
    kill -9 "$SPID" 2>/dev/null
    log "stunnel $name did not come up on port $SPORT (try $try): $(tail -n 3 "$WORK/stunnel-$name.log" 2>/dev/null | tr '\n' ' ')"
  done
  fail "cannot start stunnel $name"
  dump "$WORK/stunnel-$name.log"
  finish
}

case_tls() {
  need_redis
  if [ -z "$STUNNEL" ]; then
    echo "tls: stunnel is not installed (Debian: apt-get install stunnel4); skipping" >&2
    exit 77
  fi
  local key=$WORK/redcoll.key crt=$WORK/redis-tls.crt tkey=$WORK/redis-tls.key
  make_key "$key"
  # 1. the certificate
  if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$tkey" -out "$crt" >"$WORK/openssl.log" 2>&1; then
    fail "openssl req could not make a certificate"
    dump "$WORK/openssl.log"
    finish
  fi
  chmod 600 "$tkey"

  # 2. TLS server in front of the fixture's Redis
  start_stunnel server "[redis-tls]
accept = 127.0.0.1:@PORT@
connect = 127.0.0.1:$PORT
cert = $crt
key = $tkey
sslVersionMin = TLSv1.2"
  local tls_port=$SPORT server_pid=$SPID

  # 3. TLS client that verifies the server's certificate and name
  start_stunnel client "[redis]
client = yes
accept = 127.0.0.1:@PORT@
connect = 127.0.0.1:$tls_port
CAfile = $crt
verifyChain = yes
checkHost = localhost
sslVersionMin = TLSv1.2"
  local local_port=$SPORT client_pid=$SPID
  local url=redis://127.0.0.1:$local_port

  # the tunnel carries RESP; the server end speaks TLS with our certificate
  # and refuses plaintext
  local pong plain brief
  pong=$(timeout 10 redis-cli -h 127.0.0.1 -p "$local_port" ping 2>&1)
  check "redis-cli ping through the tunnel answers PONG (got '$pong')" [ "$pong" = PONG ]
  brief=$(timeout 10 openssl s_client -connect "127.0.0.1:$tls_port" -CAfile "$crt" -verify_return_error \
    -verify_hostname localhost -brief </dev/null 2>&1)
  log "openssl s_client on the TLS port: $(echo "$brief" | tr '\n' ';' | head -c 300)"
  check "the TLS port completes a verified TLS handshake with our certificate" contains "$brief" "Verification: OK"
  plain=$(timeout 10 redis-cli -h 127.0.0.1 -p "$tls_port" ping 2>&1)
  log "plaintext redis-cli ping on the TLS port: '$(echo "$plain" | tr '\n' ' ')'"
  check "plaintext RESP on the TLS port gets no PONG" [ "$plain" != PONG ]
  CHECKS=$((CHECKS + 1))
  wait_for "the server stunnel to log the plaintext attempt as a TLS failure" 5 \
    grep -qiE 'SSL_accept|wrong version|http request|unexpected eof' "$WORK/stunnel-server.log" ||
    dump "$WORK/stunnel-server.log"

  # 4. pi over the tunnel: workers and master know only the local port
  local ref refpi out rc got ws pids=() i
  ref=$(timeout -k 5 60 "$PI" --local --samples $SAMPLES --tasks 8 --seed 11 --json)
  refpi=$(json_field pi "$ref")
  for i in 1 2; do
    bg "$PI" --worker --redis "$url" --key-file "$key" 2>"$WORK/w$i.log"
    pids+=("$BG")
  done
  out=$(timeout -k 5 90 "$PI" --redis "$url" --key-file "$key" --samples $SAMPLES --tasks 8 --seed 11 --json \
    2>"$WORK/master.err")
  rc=$?
  got=$(json_field pi "$out")
  ws=$(json_field workers_seen "$out")
  log "over TLS: status $rc pi=$got workers_seen=$ws; --local pi=$refpi"
  check "master over TLS exits 0 (status $rc)" [ $rc = 0 ] || dump "$WORK/master.err" "$WORK/w1.log" "$WORK/w2.log"
  check "pi over TLS ($got) is the same as --local ($refpi)" test -n "$got" -a "$got" = "$refpi"
  check "workers_seen '$ws' is a number" is_uint "$ws"
  is_uint "$ws" && check "1 <= workers_seen $ws <= 2" between "$ws" 1 2
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    if wait_gone "$p" 15; then
      check "worker $p exits 0 on SIGTERM (status $STATUS)" [ "$STATUS" = 0 ]
    else
      fail "worker $p still running 15 s after SIGTERM"
    fi
  done

  # clean up: both stunnels stop on SIGTERM, nothing of ours is left
  for p in "$client_pid" "$server_pid"; do
    kill -TERM "$p" 2>/dev/null
    wait_gone "$p" 10 || { fail "stunnel $p still running 10 s after SIGTERM"; kill -9 "$p" 2>/dev/null; }
  done
  local left
  left=$(pgrep -af -- "$WORK" 2>/dev/null)
  check "no process left behind (found: $left)" [ -z "$left" ]
}

case "$CASE" in
tls) "case_$CASE" ;;
*) echo "test_tls.sh: unknown case '$CASE'" >&2; exit 2 ;;
esac
finish
