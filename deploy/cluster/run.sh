#!/usr/bin/env bash
# A whole Stock Quest cluster on one machine: Redis, PostgreSQL, two engine candidates and three gateways. For trying
# the cluster and for its test (tests/test_cluster_example.py); put nginx in front with deploy/nginx/cluster.conf,
# and see docs/scaling.md for the same pieces on several machines.
#
#   deploy/cluster/run.sh [FOLDER]      everything in FOLDER (default ./cluster): data, logs, configs. Ctrl-C stops it.
#
# Ports (environment): GATEWAY_PORTS ("8081 8082 8083"), ENGINE_PORTS ("8091 8092"),
# REDIS_PORT (6390), POSTGRES_PORT (5440). PYTHON: the Python with Stock Quest's requirements (default .venv's).
# Needs Debian's redis-server and postgresql (apt-get install redis-server postgresql), and `make setup` done.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
folder="$(mkdir -p "${1:-cluster}" && cd "${1:-cluster}" && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
read -r -a gateway_ports <<< "${GATEWAY_PORTS:-8081 8082 8083}"
read -r -a engine_ports <<< "${ENGINE_PORTS:-8091 8092}"
redis_port="${REDIS_PORT:-6390}"
postgres_port="${POSTGRES_PORT:-5440}"
mkdir -p "$folder/logs"
pids=()

stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$folder/postgres/data/postmaster.pid" ] && as_postgres "$pg_bin/pg_ctl" -D "$folder/postgres/data" -m fast -w stop >/dev/null
  echo "cluster stopped"
}
trap stop INT TERM EXIT

# Redis: the broker and the engine lease. Saved to its folder, so a restart keeps the market's state.
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$folder" --daemonize no >"$folder/logs/redis.log" 2>&1 &
pids+=($!)

# PostgreSQL: every order, fill and ledger. initdb refuses to run as root: then the postgres user owns the cluster
# (and must be able to reach FOLDER: a folder under /root is not reachable by it; use one under /srv or /tmp).
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$folder/postgres/data/PG_VERSION" ]; then
  mkdir -p "$folder/postgres"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$folder/postgres"; fi
  as_postgres "$pg_bin/initdb" -D "$folder/postgres/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
fi
as_postgres "$pg_bin/pg_ctl" -D "$folder/postgres/data" -l "$folder/postgres/server.log" -w start \
  -o "-p $postgres_port -k /tmp -c listen_addresses=127.0.0.1" >/dev/null
as_postgres "$pg_bin/psql" -h 127.0.0.1 -p "$postgres_port" -U postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'stockquest'" | grep -q 1 \
  || as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$postgres_port" -U postgres stockquest

# One secret for every process: any engine leader must accept the tokens the last one issued.
[ -f "$folder/jwt-secret" ] || "$python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$folder/jwt-secret"
export STOCKQUEST_JWT_SECRET="$(cat "$folder/jwt-secret")"
export STOCKQUEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export STOCKQUEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$postgres_port/stockquest"

start() {  # NAME PORT ARGS...: one Stock Quest process, its log in logs/NAME.log
  local name="$1" port="$2"; shift 2
  "$python" "$root/stockquest.py" --host 127.0.0.1 --port "$port" --data-dir "$folder/data-$name" \
    --trusted-proxy 127.0.0.1 "$@" >"$folder/logs/$name.log" 2>&1 &
  pids+=($!)
}
i=0
for port in "${engine_ports[@]}"; do i=$((i + 1)); start "engine$i" "$port" --role engine; done
i=0
for port in "${gateway_ports[@]}"; do i=$((i + 1)); start "gateway$i" "$port" --role gateway; done

echo "Stock Quest cluster: gateways on 127.0.0.1 ports ${gateway_ports[*]} (open http://127.0.0.1:${gateway_ports[0]}/)," \
     "engine candidates on ${engine_ports[*]}; logs in $folder/logs. Ctrl-C stops it."
wait -n "${pids[@]}" || true
echo "a process of the cluster exited; see $folder/logs" >&2
