#!/usr/bin/env bash
# Start three real S3-compatible servers on loopback for the integration tests:
#   * Garage 2.5 (single node, path-style, region "garage")
#   * moto_server (region us-east-1, credentials testing/testing)
#   * LocalStack's S3, STS, KMS and SQS in host mode, no Docker (region us-east-1,
#     credentials test/test): stricter than moto where S3 is (tests opt in to it, see
#     tests/integration/support/servers.rs)
# and write $STATE_DIR/env with KEY=value lines describing them.
#
# Idempotent: if all three are already running and answering, prints
# "test servers already up" and exits. State dir: $TEST_SERVERS_DIR,
# default <repo>/target/test-servers. Stop them with tests/servers/down.sh.
set -euo pipefail
# shellcheck source=tests/servers/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GARAGE_VERSION=2.5.0
# LocalStack from PyPI (localstack-core with its runtime extras), in its own venv under
# target/ on Python 3.13 or later. 2026.3.0 starts only with these pins (the Makefile's
# test-servers target says why); changing one installs again.
LOCALSTACK_PINS=("localstack-core[runtime]==2026.3.0" "cbor2<6" "pyOpenSSL<24.3" "cryptography<44" "service_identity")
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

# Serialise concurrent invocations (e.g. several test binaries calling up.sh).
exec 9>"$STATE_DIR/.lock"
flock 9

die() {
  log "ERROR: $1"
  if [[ -n ${2:-} && -f $2 ]]; then
    log "---- last lines of $2 ----"
    tail -n 25 "$2" >&2 || true
  fi
  exit 1
}

env_get() { sed -n "s/^$1=//p" "$ENV_FILE" 2>/dev/null | head -n1; }

# ---------------------------------------------------------------- fast path
if [[ -s $ENV_FILE ]] &&
  pid_alive "$GARAGE_PID_FILE" garage && pid_alive "$MOTO_PID_FILE" moto_server &&
  pid_alive "$LOCALSTACK_PID_FILE" localstack.runtime.main; then
  g=$(env_get GARAGE_ENDPOINT)
  m=$(env_get MOTO_ENDPOINT)
  l=$(env_get LOCALSTACK_ENDPOINT)
  if [[ -n $g && -n $m && -n $l && $(http_code "$g/") != 000 && $(http_code "$m/") != 000 &&
    $(http_code "$l/_localstack/health") == 200 ]]; then
    log "test servers already up"
    exit 0
  fi
fi

# Something is missing or half-up: start all three from scratch.
rm -f "$ENV_FILE"
stop_pid "$GARAGE_PID_FILE" garage garage
stop_pid "$MOTO_PID_FILE" moto_server moto
stop_pid "$LOCALSTACK_PID_FILE" localstack.runtime.main localstack

# ------------------------------------------------------------ install: moto
if [[ ! -x $VENV_DIR/bin/moto_server ]]; then
  log "installing moto into $VENV_DIR ..."
  python3 -m venv "$VENV_DIR" || die "python3 -m venv $VENV_DIR failed"
  "$VENV_DIR/bin/python" -m pip install --quiet 'moto[server]' >"$STATE_DIR/moto-install.log" 2>&1 ||
    die "pip install 'moto[server]' failed" "$STATE_DIR/moto-install.log"
fi

# ------------------------------------------------------ install: localstack
# A Python of 3.13 or later (LocalStack 2026.3.0 wants 3.12+, but under pyenv's 3.12.1 its
# runtime found no components and exited): pyenv's newest first, then PATH.
find_python313() {
  local p pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for p in $(ls -d "$pyenv_root"/versions/3.* 2>/dev/null | sort -rV | sed 's|$|/bin/python3|') \
    python3.14 python3.13 python3; do
    p=$(command -v "$p" 2>/dev/null) || continue
    "$p" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null && { printf '%s\n' "$p"; return 0; }
  done
  return 1
}
LS_MARKER=$LOCALSTACK_VENV/.installed-$(printf '%s ' "${LOCALSTACK_PINS[@]}" | cksum | cut -d' ' -f1)
if [[ ! -f $LS_MARKER ]]; then
  PY313=$(find_python313) || die "LocalStack needs Python 3.13 or later (none in pyenv or on PATH)"
  log "installing LocalStack into $LOCALSTACK_VENV with $PY313 (takes ~2 min) ..."
  rm -rf "$LOCALSTACK_VENV"
  "$PY313" -m venv "$LOCALSTACK_VENV" || die "$PY313 -m venv $LOCALSTACK_VENV failed"
  "$LOCALSTACK_VENV/bin/python" -m pip install --quiet "${LOCALSTACK_PINS[@]}" \
    >"$STATE_DIR/localstack-install.log" 2>&1 ||
    die "pip install ${LOCALSTACK_PINS[*]} failed" "$STATE_DIR/localstack-install.log"
  touch "$LS_MARKER"
fi

# ---------------------------------------------------------- install: garage
find_garage() {
  local g
  g=$(command -v garage 2>/dev/null || true)
  [[ -z $g && -x $CARGO_BIN/garage ]] && g=$CARGO_BIN/garage
  [[ -n $g ]] && printf '%s\n' "$g"
}
GARAGE=$(find_garage || true)
if [[ -z $GARAGE ]] && pgrep -f "cargo install garage" >/dev/null 2>&1; then
  log "a 'cargo install garage' is already running; waiting for it ..."
  while pgrep -f "cargo install garage" >/dev/null 2>&1; do sleep 5; done
  GARAGE=$(find_garage || true)
fi
if [[ -z $GARAGE ]]; then
  log "installing garage $GARAGE_VERSION with cargo (takes ~7 min) ..."
  cargo install garage --locked --version "$GARAGE_VERSION" >"$STATE_DIR/garage-install.log" 2>&1 ||
    die "cargo install garage failed" "$STATE_DIR/garage-install.log"
  GARAGE=$(find_garage || true)
  [[ -n $GARAGE ]] || die "garage installed but not found on PATH or in $CARGO_BIN"
fi

# -------------------------------------------------------------------- ports
# Three distinct free loopback ports for garage (s3, rpc, admin), one for moto, one for
# LocalStack.
read -r G_S3 G_RPC G_ADMIN M_PORT L_PORT < <(python3 - <<'PY'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PY
)

rand_hex() { python3 -c "import secrets,sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"; }

# start_bg PIDFILE LOG [VAR=value...] CMD ARGS...: run detached (own session,
# clean environment, lock fd closed); the process itself writes its pid.
start_bg() {
  local pidfile=$1 logfile=$2 i
  shift 2
  rm -f "$pidfile"
  clean_env setsid bash -c 'echo $$ >"$0"; exec nohup env "$@"' "$pidfile" "$@" \
    </dev/null >"$logfile" 2>&1 9>&- &
  for i in $(seq 1 50); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $*" "$logfile"
}

# ------------------------------------------------------------- start garage
# Garage's data is wiped on every cold start: each `up` gives a fresh, empty cluster.
GDIR=$STATE_DIR/garage
rm -rf "$GDIR"
mkdir -p "$GDIR/meta" "$GDIR/data"
GCONF=$GDIR/garage.toml
GLOG=$STATE_DIR/garage.log
G_KEY_ID=GK$(rand_hex 12)
G_SECRET=$(rand_hex 32)
umask_old=$(umask)
umask 077
cat >"$GCONF" <<TOML
metadata_dir = "$GDIR/meta"
data_dir = "$GDIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$G_RPC"
rpc_public_addr = "127.0.0.1:$G_RPC"
rpc_secret = "$(rand_hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$G_S3"

[admin]
api_bind_addr = "127.0.0.1:$G_ADMIN"
TOML
umask "$umask_old"

# --single-node applies a one-node layout (zone dc1, capacity = disk size);
# --default-access-key imports GARAGE_DEFAULT_ACCESS_KEY/SECRET_KEY with the
# create-bucket permission, so tests can CreateBucket over S3.
log "starting garage ($GARAGE) ..."
start_bg "$GARAGE_PID_FILE" "$GLOG" \
  GARAGE_DEFAULT_ACCESS_KEY="$G_KEY_ID" GARAGE_DEFAULT_SECRET_KEY="$G_SECRET" \
  RUST_LOG="${GARAGE_RUST_LOG:-garage=info}" RUST_BACKTRACE=0 NO_COLOR=1 \
  "$GARAGE" -c "$GCONF" server --single-node --default-access-key

# --------------------------------------------------------------- start moto
MLOG=$STATE_DIR/moto.log
log "starting moto_server ..."
start_bg "$MOTO_PID_FILE" "$MLOG" "$VENV_DIR/bin/moto_server" -H 127.0.0.1 -p "$M_PORT"

# --------------------------------------------------------- start localstack
# Ephemeral (no persistence; its files under a folder wiped on every cold start), on
# loopback only, and silent: no usage events (DISABLE_EVENTS), no certificate download
# (plain HTTP here), no DNS server (DNS_ADDRESS=0). start_bg's clean environment keeps the
# machine's AWS_* and CA variables away from it.
LDIR=$STATE_DIR/localstack
rm -rf "$LDIR"
mkdir -p "$LDIR"
LLOG=$STATE_DIR/localstack.log
log "starting localstack ..."
start_bg "$LOCALSTACK_PID_FILE" "$LLOG" \
  SERVICES=s3,sqs,sts,kms GATEWAY_LISTEN="127.0.0.1:$L_PORT" LOCALSTACK_HOST="127.0.0.1:$L_PORT" \
  PERSISTENCE=0 FILESYSTEM_ROOT="$LDIR" DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 \
  "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main

# ---------------------------------------------------------------- readiness
# wait_http NAME URL PIDFILE PATTERN LOG WANT   (WANT: a code, or "any")
wait_http() {
  local code i
  for i in $(seq 1 150); do
    code=$(http_code "$2")
    if [[ $6 == any && $code != 000 ]] || [[ $code == "$6" ]]; then return 0; fi
    pid_alive "$3" "$4" || die "$1 exited during startup" "$5"
    sleep 0.2
  done
  die "$1 did not answer on $2 within 30 s (last HTTP status $code)" "$5"
}
# Garage's admin /health is 200 only once the layout is in effect.
wait_http garage "http://127.0.0.1:$G_ADMIN/health" "$GARAGE_PID_FILE" garage "$GLOG" 200
wait_http garage "http://127.0.0.1:$G_S3/" "$GARAGE_PID_FILE" garage "$GLOG" any
log "garage up on http://127.0.0.1:$G_S3 (admin :$G_ADMIN, rpc :$G_RPC)"
wait_http moto "http://127.0.0.1:$M_PORT/" "$MOTO_PID_FILE" moto_server "$MLOG" any
log "moto up on http://127.0.0.1:$M_PORT"
# LocalStack's health answers 200 once its services are loaded.
wait_http localstack "http://127.0.0.1:$L_PORT/_localstack/health" "$LOCALSTACK_PID_FILE" \
  localstack.runtime.main "$LLOG" 200
log "localstack up on http://127.0.0.1:$L_PORT"

# ----------------------------------------------------------------- env file
cat >"$ENV_FILE.tmp" <<ENV
GARAGE_ENDPOINT=http://127.0.0.1:$G_S3
GARAGE_REGION=garage
GARAGE_ACCESS_KEY_ID=$G_KEY_ID
GARAGE_SECRET_ACCESS_KEY=$G_SECRET
MOTO_ENDPOINT=http://127.0.0.1:$M_PORT
MOTO_REGION=us-east-1
MOTO_ACCESS_KEY_ID=testing
MOTO_SECRET_ACCESS_KEY=testing
LOCALSTACK_ENDPOINT=http://127.0.0.1:$L_PORT
LOCALSTACK_REGION=us-east-1
LOCALSTACK_ACCESS_KEY_ID=test
LOCALSTACK_SECRET_ACCESS_KEY=test
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "wrote $ENV_FILE"
