#!/usr/bin/env bash
# The tasks API before and after, side by side, on this machine: wrk against gunicorn (the image's config and CMD)
# on a local PostgreSQL 15 with TLS (verify-full, as on the cluster), both apps on the same server, in alternating
# rounds so that the machine's other load hits both alike. No cluster, no Docker.
#
#   nice -n 10 bash bench/api-local.sh [--before REF] [--seconds N] [--rounds N] [--rows N] [--pod]
#
# --before REF  the code to compare with (default: main), from git; "after" is this working tree's images/api
# --seconds N   each wrk run (default 15); --rounds N: before/after alternations (default 3)
# --rows N      tasks in each table before the runs (default 1000000), for the page benchmark
# --pod         run each app in a cgroup with the pod's limits (500m CPU, 256Mi memory) instead of pinned to one
#               CPU with taskset; needs root and the cpu and memory controllers (cgroup v1 or v2)
#
# Prints a Markdown table on stdout (requests/s, p50/p99, the app's CPU per request and the requests one CPU
# serves at that cost, errors), the database's own ceiling for the same INSERT and page SELECT (pgbench, same
# clients), and the workers' memory; progress with the elapsed time on stderr. Needs: postgresql-15, wrk, openssl,
# the API's Debian packages (npm run setup), git.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=main SECONDS_EACH=15 ROUNDS=3 ROWS=1000000 POD=0 CONNECTIONS=8
while [ $# -gt 0 ]; do
    case $1 in
        --before) BEFORE=$2; shift 2 ;;
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --rows) ROWS=$2; shift 2 ;;
        --pod) POD=1; shift ;;
        *) echo "unknown argument: $1 (allowed: --before REF, --seconds N, --rounds N, --rows N, --pod)" >&2; exit 2 ;;
    esac
done
for n in SECONDS_EACH ROUNDS ROWS; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "${n,,} is '${!n}': allowed: a positive integer" >&2; exit 2; }
done

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PYTHON=${APP_PYTHON:-/usr/bin/python3}
T0=$(date +%s)
log() { printf '[api-local %4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { echo "api-local: $*" >&2; exit 1; }
for tool in wrk openssl git taskset curl; do command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install -y $tool)"; done
[ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 in $PG_BIN (Debian: postgresql-15)"
git -C "$REPO" rev-parse --verify -q "$BEFORE^{commit}" >/dev/null || die "--before $BEFORE is not a commit of $REPO"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: the apps on CPU 0, PostgreSQL and wrk on the others"

W=$(mktemp -d /tmp/api-bench-XXXXXX)
chmod 755 "$W"
PIDS=() CGROUPS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    if [ -f "$W/pg/data/postmaster.pid" ]; then
        "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    # A cgroup can go once its processes have exited.
    for cg in "${CGROUPS[@]}"; do
        for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
        [ -d "$cg" ] && echo "api-local: could not remove $cg" >&2
    done
    rm -rf "$W"
}
trap cleanup EXIT

# initdb and postgres refuse to run as root.
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- PostgreSQL 15 with TLS, on the CPUs the apps do not use ----------------------------------------------------
log "PostgreSQL 15 with TLS (a CA and a server certificate for 127.0.0.1, ECDSA P-256, as the cluster's)"
mkdir -p "$W/tls" "$W/pg"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/tls/ca.key" -out "$W/tls/ca.crt" \
    -days 2 -subj /CN=api-bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/tls/server.key" -out "$W/tls/server.csr" \
    -subj /CN=127.0.0.1 2>/dev/null
openssl x509 -req -in "$W/tls/server.csr" -CA "$W/tls/ca.crt" -CAkey "$W/tls/ca.key" -CAcreateserial -days 2 \
    -out "$W/tls/server.crt" -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') 2>/dev/null
chmod 644 "$W/tls/ca.crt"
[ "$(id -u)" = 0 ] && chown -R postgres: "$W/pg" "$W/tls"
chmod 600 "$W/tls/server.key"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$W/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
PGPORT=$(free_port)
# Durable commits (fsync, synchronous_commit on), as on the cluster's volumes; no replica to wait for.
OTHER_CPUS=1-$(($(nproc) - 1))
taskset -c "$OTHER_CPUS" "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -o "-c listen_addresses=127.0.0.1 \
    -p $PGPORT -c unix_socket_directories=$W/pg -c ssl=on -c ssl_cert_file=$W/tls/server.crt -c ssl_key_file=$W/tls/server.key \
    -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
psql_() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$W/pg" -p "$PGPORT" -U postgres "$@"; }
psql_ -d postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench'"

# --- the two releases' files, as the Dockerfile copies them, each migrated by its own release-migrate -----------
declare -A DIR PORT MASTER
DIR[before]=$W/before/app DIR[after]=$W/after/app
mkdir -p "$W/before/src" "${DIR[before]}" "${DIR[after]}"
git -C "$REPO" archive "$BEFORE" images/api | tar -x -C "$W/before/src"
for f in gunicorn.conf.py tasks_api migrations; do
    cp -r "$W/before/src/images/api/$f" "${DIR[before]}/"
    cp -r "$REPO/images/api/$f" "${DIR[after]}/"
done
find "$W" -name __pycache__ -prune -exec rm -rf {} +
# The pod's environment: the Dockerfile's ENV and the Secret's DATABASE_URL (TLS verify-full against the CA).
app_env() {
    ENV=(env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/nonexistent PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FLASK_APP=tasks_api
        "DATABASE_URL=postgresql://bench:bench@127.0.0.1:$PGPORT/$1?sslmode=verify-full&sslrootcert=$W/tls/ca.crt")
}
for side in before after; do
    psql_ -d postgres -c "CREATE DATABASE $side OWNER bench"
    app_env "$side"
    (cd "${DIR[$side]}" && "${ENV[@]}" "$PYTHON" -m flask release-migrate >"$W/$side-migrate.log" 2>&1) \
        || die "release-migrate of $side failed: $(cat "$W/$side-migrate.log")"
    log "$side ($([ $side = before ] && git -C "$REPO" rev-parse --short "$BEFORE" || echo "working tree")): migrated to $(psql_ -d $side -c 'SELECT version_num FROM alembic_version')"
done
log "$ROWS tasks in each table"
for side in before after; do
    psql_ -d "$side" -c "INSERT INTO task (title, description) SELECT 'task ' || g, 'seeded ' || g FROM generate_series(1, $ROWS) g" \
        -c "VACUUM ANALYZE task"
done

# --- the apps: the image's CMD, on CPU 0 (a 1-CPU budget) or in the pod's cgroup --------------------------------
cgroup_for() {  # cgroup_for NAME: sets GROUPS_OF to the directories whose cgroup.procs a process joins for 500m CPU, 256Mi
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        local d=/sys/fs/cgroup/api-bench-$1-$$
        mkdir "$d" && CGROUPS+=("$d") || return 1
        echo "50000 100000" >"$d/cpu.max" && echo $((256 * 1024 * 1024)) >"$d/memory.max" || return 1
        echo 0 >"$d/memory.swap.max" 2>/dev/null || true
        GROUPS_OF="$d"
    else
        local c=/sys/fs/cgroup/cpu/api-bench-$1-$$ m=/sys/fs/cgroup/memory/api-bench-$1-$$
        mkdir "$c" && CGROUPS+=("$c") && mkdir "$m" && CGROUPS+=("$m") || return 1
        echo 100000 >"$c/cpu.cfs_period_us" && echo 50000 >"$c/cpu.cfs_quota_us" && echo $((256 * 1024 * 1024)) >"$m/memory.limit_in_bytes" || return 1
        GROUPS_OF="$c $m"
    fi
}
for side in before after; do
    PORT[$side]=$(free_port)
    app_env "$side"
    cmd=("${ENV[@]}" "$PYTHON" -m gunicorn --config "${DIR[$side]}/gunicorn.conf.py" "tasks_api:create_app()" --bind "127.0.0.1:${PORT[$side]}")
    if [ $POD = 1 ]; then
        [ "$(id -u)" = 0 ] || die "--pod needs root (cgroups)"
        cgroup_for "$side" || die "could not make a cgroup for $side (no cpu/memory controller?)"
        # shellcheck disable=SC2016 # $$ and "$@" are the inner bash's: the app's pid and its command
        (cd "${DIR[$side]}" && exec setsid bash -c 'for g in '"$GROUPS_OF"'; do echo $$ > "$g/cgroup.procs"; done; exec "$@"' _ \
            "${cmd[@]}") >"$W/$side-app.log" 2>&1 &
    else
        (cd "${DIR[$side]}" && exec setsid taskset -c 0 "${cmd[@]}") >"$W/$side-app.log" 2>&1 &
    fi
    PIDS+=($!)
    MASTER[$side]=$!
    disown
done
for side in before after; do
    for _ in $(seq 150); do curl -sf "http://127.0.0.1:${PORT[$side]}/healthz" >/dev/null && break; sleep 0.2; done
    curl -sf "http://127.0.0.1:${PORT[$side]}/healthz" >/dev/null || die "$side did not start: $(tail -20 "$W/$side-app.log")"
done
log "apps up: before :${PORT[before]}, after :${PORT[after]} ($([ $POD = 1 ] && echo 'each in a 500m CPU / 256Mi cgroup' || echo 'each pinned to CPU 0 with taskset'))"

# --- measurements -----------------------------------------------------------------------------------------------
cpu_seconds() {  # user+system CPU of a gunicorn master and its workers
    local pids total=0 p
    pids="$1 $(cat /proc/"$1"/task/"$1"/children 2>/dev/null)"
    for p in $pids; do [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$total $(getconf CLK_TCK)" | awk '{printf "%.3f", $1 / $2}'
}
worker_memory() {  # "max RSS MB / total PSS MB" of the workers
    local p rss=0 pss=0 children=()
    { read -r -a children <"/proc/$1/task/$1/children"; } 2>/dev/null || true
    for p in "${children[@]}"; do
        local r s
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"); s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
        [ "$r" -gt "$rss" ] && rss=$r; pss=$((pss + s))
    done
    echo "$((rss / 1024)) MB / $((pss / 1024)) MB"
}
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.1f", n }'; }
ROWS_OUT=()
run_wrk() {  # run_wrk SIDE NAME LUA [CONNECTIONS]
    local side=$1 name=$2 lua=$3 conns=${4:-$CONNECTIONS} out c0 c1
    c0=$(cpu_seconds "${MASTER[$side]}")
    out=$(BENCH_ROWS=$ROWS taskset -c "$OTHER_CPUS" wrk -t"$((conns < 2 ? 1 : 2))" -c"$conns" -d"${SECONDS_EACH}s" --latency \
        -s "$REPO/bench/$lua" "http://127.0.0.1:${PORT[$side]}/tasks")
    c1=$(cpu_seconds "${MASTER[$side]}")
    local n rps p50 p99 errors cpu_ms
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) n += $i} END {print n + 0}' <<<"$out")
    cpu_ms=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN {printf "%.2f", n ? (b - a) * 1000 / n : 0}')
    ROWS_OUT+=("$side|$name|$rps|$p50|$p99|$cpu_ms|$errors")
    log "$side $name: $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu_ms ms CPU/request, errors $errors"
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
    order=(before after); [ $((round % 2)) = 0 ] && order=(after before)
    log "round $round of $ROUNDS (${order[*]})"
    for side in "${order[@]}"; do run_wrk "$side" "POST /tasks" api-local.post.lua; done
    run_wrk after "POST /tasks, Idempotency-Key" api-local.post-keyed.lua
    run_wrk after "GET /tasks?after=<random> (100 of $ROWS)" api-local.page.lua
    # One client: the latency of a request that does not queue behind others.
    for side in "${order[@]}"; do run_wrk "$side" "POST /tasks, 1 connection" api-local.post.lua 1; done
    run_wrk after "GET /tasks?after=<random>, 1 connection" api-local.page.lua 1
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The database's own ceiling for the same statements, same clients, over TLS.
log "pgbench: the same INSERT and page SELECT, $CONNECTIONS clients"
echo "INSERT INTO task (title, description) VALUES ('New task', 'Goddhi is fvcking good!!!!!');" >"$W/insert.sql"
printf '\\set after random(0, %d)\nSELECT id, title, description FROM task WHERE id > :after ORDER BY id LIMIT 101;\n' $((ROWS - 100)) >"$W/page.sql"
pgbench_tps() {
    PGPASSWORD=bench PGSSLMODE=verify-full PGSSLROOTCERT=$W/tls/ca.crt taskset -c "$OTHER_CPUS" "$PG_BIN/pgbench" -n \
        -h 127.0.0.1 -p "$PGPORT" -U bench -c "$CONNECTIONS" -j 2 -T "$SECONDS_EACH" -f "$1" after 2>/dev/null \
        | awk '/^tps/ {printf "%.0f", $3} /latency average/ {lat = $4} END {printf " tps at %s ms", lat}'
}
DB_INSERT=$(pgbench_tps "$W/insert.sql")
DB_PAGE=$(pgbench_tps "$W/page.sql")

BEFORE_GET="not run"
if [ $POD = 1 ]; then
    # One GET /tasks of the before code: it reads every row (no pages).
    log "before: one GET /tasks of $ROWS rows in its 256Mi cgroup"
    t=$(date +%s.%N)
    code=$(curl -s -o /dev/null -m 120 -w '%{http_code}' "http://127.0.0.1:${PORT[before]}/tasks" || true)
    BEFORE_GET="HTTP $code after $(awk -v t="$t" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - t}') s"
    grep -q "signal 9" "$W/before-app.log" && BEFORE_GET="$BEFORE_GET, a worker killed with signal 9 (memory limit)"
fi

# --- the report ------------------------------------------------------------------------------------------------
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo
echo "## bench/api-local.sh, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "before: $BEFORE ($(git -C "$REPO" rev-parse --short "$BEFORE")); after: working tree at $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet -- images/api || echo ' + uncommitted changes')."
echo "$([ $POD = 1 ] && echo 'Each app in a cgroup of 500m CPU and 256Mi memory (the pod'"'"'s limits)' || echo 'Each app pinned to CPU 0 (taskset), PostgreSQL and wrk on the other CPUs'); gunicorn with each release's gunicorn.conf.py;"
echo "PostgreSQL 15 over TLS (verify-full), fsync on; wrk -t2 -c$CONNECTIONS (or one connection where the row says so), ${SECONDS_EACH} s per run, $ROUNDS rounds; $ROWS rows per table."
echo "Load average $LOAD_START at the start, $LOAD_END at the end ($(nproc) CPUs, shared)."
echo
echo "| code | request | req/s | p50 ms | p99 ms | CPU ms/request | req/s per CPU | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for side in before after; do
    for name in "POST /tasks" "POST /tasks, Idempotency-Key" "GET /tasks?after=<random> (100 of $ROWS)" \
        "POST /tasks, 1 connection" "GET /tasks?after=<random>, 1 connection"; do
        sel=$(printf '%s\n' "${ROWS_OUT[@]}" | awk -F'|' -v s="$side" -v n="$name" '$1 == s && $2 == n')
        [ -n "$sel" ] || continue
        col() { cut -d'|' -f"$1" <<<"$sel" | median; }
        cpu=$(col 6)
        printf '| %s | %s | %.0f | %.1f | %.1f | %.2f | %.0f | %d |\n' "$side" "$name" "$(col 3)" "$(col 4)" "$(col 5)" "$cpu" \
            "$(awk -v c="$cpu" 'BEGIN {print (c > 0 ? 1000 / c : 0)}')" "$(cut -d'|' -f7 <<<"$sel" | awk '{n += $1} END {print n}')"
    done
done
echo
echo "Medians over the rounds; \"req/s per CPU\" is 1000 / CPU ms per request: what one CPU serves at that cost."
echo "The database alone (pgbench, $CONNECTIONS clients, TLS): INSERT $DB_INSERT; page SELECT $DB_PAGE."
echo "Workers' memory after the runs (max RSS / total PSS): before $(worker_memory "${MASTER[before]}"), after $(worker_memory "${MASTER[after]}")."
echo "before, GET /tasks of all $ROWS rows: $BEFORE_GET."
log "done"
