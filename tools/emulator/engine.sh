#!/usr/bin/env bash
# A Docker engine for the real `sam local`, on a Linux machine where there is none (CI, a bare VM).
#
#   tools/emulator/engine.sh start   install Debian's docker.io if dockerd is missing, start dockerd unless an
#                           engine already answers, then build the Lambda image (tools/emulator/lambda_image)
#   tools/emulator/engine.sh stop    stop the dockerd that `start` started (never an engine it found running)
#
# Only `make engine` and CI run it: nothing installs packages or starts a daemon otherwise. Needs root.
set -euo pipefail

PIDFILE=/run/items-service-dockerd.pid
LOG=/var/log/items-service-dockerd.log
say() { echo "engine: $*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_daemon() {
    if engine_answers; then
        say "a Docker engine answers ($(docker version --format '{{.Server.Version}}')): using it"
        return
    fi
    if ! command -v dockerd >/dev/null; then
        [ "$(id -u)" = 0 ] || { say "dockerd is missing and installing it needs root"; exit 1; }
        say "installing Debian's docker.io"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq docker.io >/dev/null || { apt-get update -qq && apt-get install -y -qq docker.io >/dev/null; }
    fi
    # No NAT and no iptables rules: containers reach only this machine (the docker0 bridge,
    # 172.17.0.1 by default), which is all `sam local` needs. Keep the default bridge: with
    # --bridge=none SAM cannot reach its own container.
    say "starting dockerd (log: $LOG)"
    setsid dockerd --iptables=false --ip-forward=false --ip-masq=false --pidfile "$PIDFILE" \
        </dev/null >"$LOG" 2>&1 &
    for _ in $(seq 100); do
        engine_answers && { say "dockerd $(docker version --format '{{.Server.Version}}') is up"; return; }
        kill -0 $! 2>/dev/null || break
        sleep 0.2
    done
    say "dockerd did not come up; the end of $LOG:"
    tail -20 "$LOG" >&2
    exit 1
}

stop_daemon() {
    [ -f "$PIDFILE" ] || { say "no dockerd started by this script: nothing to stop"; return; }
    local pid
    pid=$(cat "$PIDFILE")
    # Warm containers of `sam local start-api` would otherwise be left behind.
    docker ps -aq --filter label=sam.cli.container.type=lambda | xargs -r docker rm -f >/dev/null || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { say "dockerd stopped"; return; }
        sleep 0.2
    done
    say "dockerd ($pid) did not stop"
    exit 1
}

case "${1:-}" in
start)
    start_daemon
    "$(dirname "$0")/lambda_image/build.sh"
    ;;
stop) stop_daemon ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
