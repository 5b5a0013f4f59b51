#!/usr/bin/env bash
# Install the system packages the platform needs, and build TimescaleDB from Debian's
# source package when the local PostgreSQL does not have it yet. Idempotent: every step is
# skipped when its result is already there. Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

need_pkgs=()
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# PG_MAJOR follows whatever server the distribution ships (15 on Debian 12).
PG_MAJOR="${PG_MAJOR:-}"
if [ -z "$PG_MAJOR" ]; then
  PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)
fi
if [ -z "$PG_MAJOR" ]; then
  PG_MAJOR=$(apt-cache show postgresql 2>/dev/null | sed -n 's/^Depends: postgresql-\([0-9]*\).*/\1/p' | head -1 || true)
fi
PG_MAJOR="${PG_MAJOR:-15}"

python3 -c "import venv, ensurepip" 2>/dev/null || need_pkgs+=(python3-venv)
for p in "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" postgresql-client \
         mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev cmake make gcc dpkg-dev \
         libssl-dev libkrb5-dev \
         chromium chromium-driver; do
  pkg_installed "$p" || need_pkgs+=("$p")
done

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  # Debian starts a system-wide cluster and broker on install; the project runs its own, so
  # keep the distribution's services from starting (policy-rc.d) rather than fighting them.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_pkgs[@]}" >/dev/null
fi

PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PG_BIN/pg_config"
[ -x "$PG_CONFIG" ] || PG_CONFIG=/usr/bin/pg_config
EXT_DIR="$("$PG_CONFIG" --sharedir)/extension"

# TSDB_CHECK_BUILD=1 rebuilds into a scratch DESTDIR (nothing installed): proves the build path.
if [ -z "${TSDB_CHECK_BUILD:-}" ] && ls "$EXT_DIR"/timescaledb.control >/dev/null 2>&1; then
  log "TimescaleDB already installed for PostgreSQL $PG_MAJOR"
else
  log "building TimescaleDB from Debian's source package (trixie) for PostgreSQL $PG_MAJOR"
  SRC_LIST=/etc/apt/sources.list.d/coldchain-trixie-src.sources
  if [ ! -e "$SRC_LIST" ]; then
    $SUDO tee "$SRC_LIST" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -qq
  BUILD_DIR="$(mktemp -d /tmp/timescaledb-build.XXXXXX)"
  (
    cd "$BUILD_DIR"
    apt-get source --download-only timescaledb >/dev/null 2>&1
    dpkg-source --no-check -x --skip-patches ./timescaledb_*.dsc src >/dev/null 2>&1
    cd src
    ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DLINTER=OFF -DENABLE_DEBUG_UTILS=OFF -DPG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
    cd build
    make -j"$(nproc)" >/dev/null
    if [ -n "${TSDB_CHECK_BUILD:-}" ]; then
      make install DESTDIR="$BUILD_DIR/dest" >/dev/null
      ls "$BUILD_DIR/dest$EXT_DIR"/timescaledb.control
    else
      $SUDO make install >/dev/null
    fi
  )
  rm -rf "$BUILD_DIR"
  if [ -n "${TSDB_CHECK_BUILD:-}" ]; then log "TimescaleDB build checked (not installed)"; else
    log "TimescaleDB installed into $EXT_DIR"; fi
fi
# The broker plugin that refuses loggers' subscriptions and binds client ids to accounts
# (deploy/mosquitto-plugin/coldchain_auth.c); `coldchain up` and the tests load it.
make -s -C "$(dirname "$0")/../deploy/mosquitto-plugin"
log "broker plugin built: deploy/mosquitto-plugin/build/coldchain_auth.so"
log "system ready (PostgreSQL $PG_MAJOR, Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'))"
