# shellcheck shell=bash
# Redis Sentinel for scripts/services (sourced by it; uses its log, die,
# wait_for, pid_alive, pidfile_pid, stop_pid, apt_install, exec_clean and
# STATE_DIR). `scripts/services up redis-sentinel` starts, on 127.0.0.1:
#
#   a primary  (REDIS_SENTINEL_PRIMARY_PORT, default 6380)
#   a replica  (REDIS_SENTINEL_REPLICA_PORT, default 6381) of it
#   three Sentinels (REDIS_SENTINEL_PORTS, default "26379 26380 26381")
#     monitoring it as REDIS_SENTINEL_MASTER (default "chat"), quorum 2
#
# and prints REDIS_SENTINELS=127.0.0.1:26379,... and REDIS_SENTINEL_MASTER=chat.
# None of the ports clashes with the plain Redis of `up redis` (6379).
#
# Timings are short, for tests (a production Sentinel uses 5-30 s):
#   down-after-milliseconds  REDIS_SENTINEL_DOWN_AFTER_MS (1000): a primary
#     silent this long is subjectively down; with 2 Sentinels agreeing it is
#     objectively down and a failover starts at once;
#   failover-timeout         REDIS_SENTINEL_FAILOVER_TIMEOUT_MS (3000): how
#     long a failover may take before another Sentinel retries it.
# A SIGKILLed primary is replaced in about down-after + 1-2 s (the leader
# election, then REPLICAOF NO ONE on the replica): docs/scaling.md.
#
# No persistence (like `up redis`): a restarted node comes back empty, and
# Sentinel turns a returning old primary into a replica of the new one.
# State: $STATE_DIR/redis-sentinel/{primary,replica,sentinel-PORT}/.

SENTINEL_MASTER=${REDIS_SENTINEL_MASTER:-chat}
SENTINEL_PRIMARY_PORT=${REDIS_SENTINEL_PRIMARY_PORT:-6380}
SENTINEL_REPLICA_PORT=${REDIS_SENTINEL_REPLICA_PORT:-6381}
read -r -a SENTINEL_PORTS <<<"${REDIS_SENTINEL_PORTS:-26379 26380 26381}"
SENTINEL_DOWN_AFTER_MS=${REDIS_SENTINEL_DOWN_AFTER_MS:-1000}
SENTINEL_FAILOVER_TIMEOUT_MS=${REDIS_SENTINEL_FAILOVER_TIMEOUT_MS:-3000}
SENTINEL_QUORUM=2
SENTINEL_DIR=$STATE_DIR/redis-sentinel

rs_cli() { # rs_cli PORT ARGS...: one command, raw output, 3 s timeout
    local port=$1; shift
    timeout 3 redis-cli -h 127.0.0.1 -p "$port" --raw "$@" 2>/dev/null
}

rs_ping() { [[ $(rs_cli "$1" PING) == PONG ]]; }

rs_sentinel_list() { # 127.0.0.1:26379,127.0.0.1:26380,...
    local out=() p
    for p in "${SENTINEL_PORTS[@]}"; do out+=("127.0.0.1:$p"); done
    (IFS=,; echo "${out[*]}")
}

sentinel_env() {
    echo "REDIS_SENTINELS=$(rs_sentinel_list)"
    echo "REDIS_SENTINEL_MASTER=$SENTINEL_MASTER"
}

# The primary's address as one Sentinel sees it ("127.0.0.1:6380").
rs_primary_of() { rs_cli "$1" SENTINEL get-master-addr-by-name "$SENTINEL_MASTER" | paste -sd: -; }

# One field of `SENTINEL master NAME` as Sentinel PORT sees it.
rs_master_field() {
    rs_cli "$1" SENTINEL master "$SENTINEL_MASTER" | awk -v k="$2" 'prev == k {print; exit} {prev = $0}'
}

# Every Sentinel names the same primary, knows the two other Sentinels and
# one replica; the primary answers; its replica is linked and not syncing.
sentinel_agreed() {
    local p addr first="" replica
    for p in "${SENTINEL_PORTS[@]}"; do
        addr=$(rs_primary_of "$p") || return 1
        [[ -n $addr ]] || return 1
        [[ -z $first || $addr == "$first" ]] || return 1
        first=$addr
        [[ $(rs_master_field "$p" num-other-sentinels) == $((${#SENTINEL_PORTS[@]} - 1)) ]] || return 1
        [[ $(rs_master_field "$p" num-slaves) -ge 1 ]] 2>/dev/null || return 1
        [[ $(rs_master_field "$p" flags) == master ]] || return 1
    done
    rs_ping "${first##*:}" || return 1
    # the replica is whichever of our two data nodes is not the primary
    replica=$SENTINEL_REPLICA_PORT
    [[ ${first##*:} != "$SENTINEL_REPLICA_PORT" ]] || replica=$SENTINEL_PRIMARY_PORT
    rs_cli "$replica" INFO replication | tr -d '\r' | grep -qx 'master_link_status:up' || return 1
    rs_cli "$replica" INFO replication | tr -d '\r' | grep -qx 'master_sync_in_progress:0'
}

sentinel_running() {
    command -v redis-cli >/dev/null || return 1
    local p
    for p in "${SENTINEL_PORTS[@]}"; do rs_ping "$p" || return 1; done
    [[ -n $(rs_primary_of "${SENTINEL_PORTS[0]}") ]]
}

rs_start_node() { # rs_start_node NAME PORT [EXTRA ARGS...]: a data node, daemonized
    local name=$1 port=$2; shift 2
    local dir=$SENTINEL_DIR/$name
    mkdir -p "$dir"
    if rs_ping "$port"; then
        log "redis-sentinel: $name already answers on 127.0.0.1:$port, reusing it"
        return 0
    fi
    : >"$dir/redis.log"
    (exec_clean redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --protected-mode yes \
        --save "" --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@") \
        </dev/null >&2 || { show_log "$dir/redis.log"; die "redis-sentinel: $name failed to start"; }
    wait_for 20 rs_ping "$port" || { show_log "$dir/redis.log"; die "redis-sentinel: $name silent on $port"; }
}

rs_start_sentinel() { # rs_start_sentinel PORT
    local port=$1 dir=$SENTINEL_DIR/sentinel-$1
    mkdir -p "$dir"
    if rs_ping "$port"; then
        log "redis-sentinel: sentinel already answers on 127.0.0.1:$port, reusing it"
        return 0
    fi
    # Sentinel rewrites its config file (known peers, current epoch): a
    # fresh one each start, so an old run's view cannot leak in.
    cat >"$dir/sentinel.conf" <<EOF
bind 127.0.0.1
port $port
protected-mode no
daemonize yes
dir $dir
pidfile $dir/sentinel.pid
logfile $dir/sentinel.log
sentinel resolve-hostnames no
sentinel monitor $SENTINEL_MASTER 127.0.0.1 $SENTINEL_PRIMARY_PORT $SENTINEL_QUORUM
sentinel down-after-milliseconds $SENTINEL_MASTER $SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $SENTINEL_MASTER $SENTINEL_FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $SENTINEL_MASTER 1
EOF
    : >"$dir/sentinel.log"
    (exec_clean redis-server "$dir/sentinel.conf" --sentinel) </dev/null >&2 \
        || { show_log "$dir/sentinel.log"; die "redis-sentinel: sentinel on $port failed to start"; }
    wait_for 20 rs_ping "$port" || { show_log "$dir/sentinel.log"; die "redis-sentinel: sentinel silent on $port"; }
}

sentinel_up() {
    command -v redis-server >/dev/null || apt_install redis-server
    command -v redis-cli >/dev/null || apt_install redis-tools
    if sentinel_running && sentinel_agreed; then
        log "redis-sentinel: already running ($SENTINEL_MASTER at $(rs_primary_of "${SENTINEL_PORTS[0]}")), reusing it"
        return 0
    fi
    local t0=$SECONDS p
    mkdir -p "$SENTINEL_DIR"
    log "redis-sentinel: primary 127.0.0.1:$SENTINEL_PRIMARY_PORT, replica :$SENTINEL_REPLICA_PORT, sentinels ${SENTINEL_PORTS[*]} (state: $SENTINEL_DIR)"
    rs_start_node primary "$SENTINEL_PRIMARY_PORT"
    rs_start_node replica "$SENTINEL_REPLICA_PORT" --replicaof 127.0.0.1 "$SENTINEL_PRIMARY_PORT"
    for p in "${SENTINEL_PORTS[@]}"; do rs_start_sentinel "$p"; done
    # Sentinels find each other through hello messages on the primary (every 2 s).
    if ! wait_for "${REDIS_SENTINEL_START_TIMEOUT:-60}" sentinel_agreed; then
        for p in "${SENTINEL_PORTS[@]}"; do show_log "$SENTINEL_DIR/sentinel-$p/sentinel.log" 10; done
        die "redis-sentinel: the sentinels did not agree on a primary with a synced replica within ${REDIS_SENTINEL_START_TIMEOUT:-60}s"
    fi
    log "redis-sentinel: ready after $((SECONDS - t0))s ($SENTINEL_MASTER at $(rs_primary_of "${SENTINEL_PORTS[0]}"))"
}

sentinel_down() {
    local f pid stopped=0
    # Sentinels first, so they do not fail over while the data nodes stop.
    for f in "$SENTINEL_DIR"/sentinel-*/sentinel.pid "$SENTINEL_DIR"/replica/redis.pid "$SENTINEL_DIR"/primary/redis.pid; do
        [[ -f $f ]] || continue
        if pid=$(pidfile_pid "$f"); then
            stop_pid "redis-sentinel ($(basename "$(dirname "$f")"))" "$pid" 10
            stopped=1
        fi
        rm -f "$f"
    done
    ((stopped)) || log "redis-sentinel: not started by this script (no live pidfile)"
}
