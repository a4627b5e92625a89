# Shell functions shared by scripts/demo.sh and scripts/bench.sh: free loopback ports, a real
# OCI registry and the Dagster+ emulator, each stopped by `stop_services` (call it on EXIT).
# Source it; it defines functions and the `service_pids` array, and runs nothing.

service_pids=()

stop_services() {
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_registry DIR: Debian's docker-registry on a free loopback port, storage in DIR/data.
# Sets `registry` (HOST:PORT) and waits until /v2/ answers.
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir/data}
http:
  addr: 127.0.0.1:$port
YAML
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  service_pids+=($!)
  registry="127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the registry did not start:" >&2
  cat "$dir/log" >&2
  return 1
}

# start_emulator BIN DIR [FLAGS…]: the Dagster+ emulator on a free loopback port.
# Sets `emulator` (its URL).
start_emulator() {
  local bin=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  "$bin" --port 0 "$@" >"$dir/emulator.out" 2>"$dir/emulator.log" &
  service_pids+=($!)
  for _ in $(seq 100); do
    grep -q '^listening on ' "$dir/emulator.out" 2>/dev/null && break
    sleep 0.1
  done
  emulator=$(sed -n 's/^listening on //p' "$dir/emulator.out" | head -1)
  if [ -z "$emulator" ]; then
    echo "the emulator did not start:" >&2
    cat "$dir/emulator.log" >&2
    return 1
  fi
}
