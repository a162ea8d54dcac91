# Shared helpers for up.sh / down.sh. Sourced, not executed.
# shellcheck shell=bash

SERVERS_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(git -C "$SERVERS_SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null ||
  (cd "$SERVERS_SCRIPT_DIR/../.." && pwd))
STATE_DIR=${TEST_SERVERS_DIR:-$REPO_ROOT/target/test-servers}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
VENV_DIR=$(dirname "$STATE_DIR")/test-venv
ENV_FILE=$STATE_DIR/env
GARAGE_PID_FILE=$STATE_DIR/garage.pid
MOTO_PID_FILE=$STATE_DIR/moto.pid
LOCALSTACK_VENV=$(dirname "$STATE_DIR")/localstack-venv
LOCALSTACK_PID_FILE=$STATE_DIR/localstack.pid

log() { printf 'test-servers: %s\n' "$*" >&2; }

# Run a command without the proxy/CA/AWS variables of the surrounding environment,
# so neither the servers nor our probes pick up anything unexpected.
clean_env() {
  env -u AWS_CA_BUNDLE -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
    -u CURL_CA_BUNDLE -u HTTPLIB2_CA_CERTS -u NIX_SSL_CERT_FILE -u PIP_CERT \
    -u GRPC_DEFAULT_SSL_ROOTS_FILE_PATH -u NODE_EXTRA_CA_CERTS \
    -u CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE -u GIT_SSL_CAINFO \
    -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    -u AWS_PROFILE -u AWS_DEFAULT_REGION -u AWS_REGION -u AWS_ENDPOINT_URL \
    -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE \
    -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u NO_PROXY \
    -u http_proxy -u https_proxy -u all_proxy -u no_proxy \
    "$@"
}

# pid_alive PIDFILE PATTERN: true if the pid in PIDFILE is running and its
# command line contains PATTERN (guards against recycled pids).
pid_alive() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# http_code URL: prints the HTTP status code (000 if nothing answered).
http_code() {
  clean_env curl -s -o /dev/null --noproxy '*' --connect-timeout 2 --max-time 3 \
    -w '%{http_code}' "$1" 2>/dev/null || true
}

# stop_pid PIDFILE PATTERN NAME
stop_pid() {
  local pid i
  if pid_alive "$1" "$2"; then
    pid=$(<"$1")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped $3 (pid $pid)"
  fi
  rm -f "$1"
}
