#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages redcoll builds, runs and tests with.
# Skips apt entirely when everything is already there, so repeated runs are fast.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libhiredis-dev libsodium-dev redis-server redis-tools clang libomp-dev procps stunnel4 openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps.sh: installing ${missing[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the package starts a system-wide server we do not use: redcoll starts its own
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
