#!/usr/bin/env bash
# Make sure a Docker engine answers. On Debian as root: install docker.io when missing and start
# dockerd in the background (log under .evoforge/). Anywhere else: say exactly what to do.
set -euo pipefail
log_dir="${EVOFORGE_HOME:-.evoforge}"
mkdir -p "$log_dir"

answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
  echo "docker-engine: daemon answers"
  exit 0
fi

if [ "$(id -u)" != "0" ] || [ ! -f /etc/debian_version ]; then
  cat >&2 <<'MSG'
docker-engine: no Docker daemon answers at unix:///var/run/docker.sock.
  Start one yourself (e.g. `sudo systemctl start docker`, or install Docker Engine:
  https://docs.docker.com/engine/install/), make sure your user can reach it
  (`sudo usermod -aG docker $USER`, then log in again), and run `make docker-engine` again.
  Without Docker, run with the non-isolating process sandbox: `make evolve SANDBOX=process`.
MSG
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd (log: $log_dir/dockerd.log)"
  nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
fi

for _ in $(seq 1 60); do
  if answers; then
    echo "docker-engine: daemon answers"
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; see $log_dir/dockerd.log" >&2
tail -n 20 "$log_dir/dockerd.log" >&2 || true
exit 1
