#!/usr/bin/env bash
# Stop the test S3 servers started by up.sh. Never fails if they are not running.
set -euo pipefail
# shellcheck source=tests/servers/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

exec 9>"$STATE_DIR/.lock"
flock 9

rm -f "$ENV_FILE"
stop_pid "$GARAGE_PID_FILE" garage garage
stop_pid "$MOTO_PID_FILE" moto_server moto
stop_pid "$LOCALSTACK_PID_FILE" localstack.runtime.main localstack
exit 0
