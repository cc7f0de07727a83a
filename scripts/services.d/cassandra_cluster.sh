# Sourced by scripts/services: `cassandra-cluster`, three Cassandra 5.0 nodes
# on loopback addresses (default 127.0.0.1-3; CASSANDRA_CLUSTER_ADDRS
# overrides them, e.g. 127.0.0.2,127.0.0.3,127.0.0.4 beside the single node,
# which holds 127.0.0.1). The same cassandra-all jars as the single node
# (cassandra_fetch), the same ports on each address, one seed (the first),
# GossipingPropertyFileSnitch with one datacenter (dc1), and:
#
# - fast start: the nodes start at once, each with a fixed token (a third
#   of the ring) and auto_bootstrap false, as a fresh cluster may;
# - small: heap CASSANDRA_CLUSTER_HEAP (768m) per node, few threads;
# - ready when each node answers CQL and `nodetool status` (NodeTool from
#   the jars, over JMX on 127.0.0.1:7201, 7202, 7203) shows all three UN.
#
# State: $STATE_DIR/cassandra-cluster/node1..3/{conf,data,logs}, cassandra.pid;
# addrs: the addresses of the last `up` (used when CASSANDRA_CLUSTER_ADDRS is unset).
# `scripts/services nodetool N ARGS...` runs nodetool against node N (1-3).

CLUSTER_DIR=$STATE_DIR/cassandra-cluster
CLUSTER_HEAP=${CASSANDRA_CLUSTER_HEAP:-768m}
CLUSTER_JMX_BASE=7200
# Murmur3 tokens splitting the ring in three equal parts.
CLUSTER_TOKENS=(-9223372036854775808 -3074457345618258603 3074457345618258602)

cluster_addrs() { # one address per line: CASSANDRA_CLUSTER_ADDRS, else those of the last `up`, else the default
    local addrs=${CASSANDRA_CLUSTER_ADDRS:-}
    [[ -n $addrs || ! -f $CLUSTER_DIR/addrs ]] || addrs=$(<"$CLUSTER_DIR/addrs")
    addrs=${addrs:-127.0.0.1,127.0.0.2,127.0.0.3}
    tr ',' '\n' <<<"$addrs" | sed 's/[[:space:]]//g' | sed '/^$/d'
}

cluster_check_addrs() {
    local -a addrs
    mapfile -t addrs < <(cluster_addrs)
    ((${#addrs[@]} == 3)) || die "cassandra-cluster: CASSANDRA_CLUSTER_ADDRS must name three addresses (got ${#addrs[@]})"
    local a
    for a in "${addrs[@]}"; do
        [[ $a =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cassandra-cluster: $a is not a loopback address"
    done
}

cluster_env() {
    local hosts
    hosts=$(cluster_addrs | paste -sd,)
    echo "CASSANDRA_HOSTS=$hosts"
    echo "CASSANDRA_REPLICATION=3"
}

cluster_cql() { # cluster_cql ADDR [cql_check args]: that node answers CQL
    local addr=$1; shift
    "$PYTHON" "$HELPERS/cql_check.py" --host "$addr" --port "$CASSANDRA_PORT" "$@"
}

# cluster_nodetool N ARGS...: NodeTool from the jars against node N's JMX.
cluster_nodetool() {
    local n=$1; shift
    local java
    java=$(find_java) || die "cassandra-cluster: no JDK 11/17 found"
    local -a mods
    mapfile -t mods < <(cassandra_module_opts)
    "$java" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto "${mods[@]}" \
        -Djava.net.preferIPv4Stack=true -Dcassandra.logdir=/tmp \
        "-Dlogback.configurationFile=file://$HELPERS/cassandra/logback-tools.xml" \
        -cp "$CASS_LIB/*" org.apache.cassandra.tools.NodeTool \
        -h 127.0.0.1 -p "$((CLUSTER_JMX_BASE + n))" "$@"
}

cluster_all_up() { # nodetool status from node 1 lists the three addresses as UN
    local -a addrs
    mapfile -t addrs < <(cluster_addrs)
    local status a
    status=$(cluster_nodetool 1 status 2>/dev/null) || return 1
    for a in "${addrs[@]}"; do
        grep -Eq "^UN +$a( |$)" <<<"$status" || return 1
    done
}

cassandra_cluster_running() {
    PYTHON=$(find_python) || return 1
    local a
    for a in $(cluster_addrs); do cluster_cql "$a" --timeout 2 2>/dev/null || return 1; done
}

cassandra_cluster_env() { cluster_env; }

# cluster_start_node N ADDR SEED: spawn node N unless it answers or is starting.
cluster_start_node() {
    local n=$1 addr=$2 seed=$3 dir=$CLUSTER_DIR/node$1 pid java
    if cluster_cql "$addr" --timeout 2 2>/dev/null; then
        log "cassandra-cluster: node$n ($addr) already answers CQL"
        return 0
    fi
    if pid=$(pidfile_pid "$dir/cassandra.pid"); then
        log "cassandra-cluster: node$n ($addr) pid $pid is still starting up"
        return 0
    fi
    tcp_open_at "$addr" "$CASSANDRA_PORT" && die "cassandra-cluster: $addr:$CASSANDRA_PORT is taken by something that does not speak CQL"
    tcp_open_at "$addr" "$CASSANDRA_STORAGE_PORT" && die "cassandra-cluster: $addr:$CASSANDRA_STORAGE_PORT (storage port) is already taken (the single node? set CASSANDRA_CLUSTER_ADDRS)"
    java=$(find_java)
    mkdir -p "$dir"/{conf,logs,data}
    sed -e "s#@DIR@#$dir#g" -e "s#@STORAGE_PORT@#$CASSANDRA_STORAGE_PORT#g" \
        -e "s#@NATIVE_PORT@#$CASSANDRA_PORT#g" -e "s#@ADDR@#$addr#g" -e "s#@SEED@#$seed#g" \
        -e "s#@TOKEN@#${CLUSTER_TOKENS[n - 1]}#g" \
        "$HELPERS/cassandra/cluster.yaml.in" >"$dir/conf/cassandra.yaml"
    cp "$HELPERS/cassandra/logback.xml" "$dir/conf/logback.xml"
    cp "$HELPERS/cassandra/cassandra-rackdc.properties" "$dir/conf/cassandra-rackdc.properties"
    local -a opts
    mapfile -t opts < <(cassandra_java_opts "$dir" "$CLUSTER_HEAP" "$CLUSTER_HEAP")
    opts+=(
        -XX:CICompilerCount=2 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1
        "-Dcassandra.jmx.local.port=$((CLUSTER_JMX_BASE + n))"
    )
    local out=$dir/logs/stdout.log
    : >"$out"
    [[ ! -f $dir/logs/system.log ]] || mv -f "$dir/logs/system.log" "$dir/logs/system.log.prev"
    log "cassandra-cluster: starting node$n on $addr (seed $seed, heap $CLUSTER_HEAP, JMX 127.0.0.1:$((CLUSTER_JMX_BASE + n)), logs: $dir/logs)"
    pid=$(spawn "$out" "$java" "${opts[@]}" -cp "$dir/conf:$CASS_LIB/*" org.apache.cassandra.service.CassandraDaemon)
    echo "$pid" >"$dir/cassandra.pid"
}

tcp_open_at() { # tcp_open_at ADDR PORT
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

cassandra_cluster_up() {
    PYTHON=$(find_python) || die "cassandra-cluster: python3 is needed for the CQL readiness check"
    cluster_check_addrs
    local -a addrs
    mapfile -t addrs < <(cluster_addrs)
    local t0=$SECONDS n
    find_java >/dev/null || { apt_install openjdk-17-jre-headless; find_java >/dev/null || die "cassandra-cluster: no JDK 11/17 found"; }
    cassandra_fetch
    for n in 1 2 3; do cluster_start_node "$n" "${addrs[n - 1]}" "${addrs[0]}"; done
    # So that status, env and nodetool find these nodes without the variable.
    (IFS=,; echo "${addrs[*]}") >"$CLUSTER_DIR/addrs"
    local deadline=$((SECONDS + ${CASSANDRA_START_TIMEOUT:-240})) pid dir waiting
    while :; do
        waiting=()
        for n in 1 2 3; do
            dir=$CLUSTER_DIR/node$n
            cluster_cql "${addrs[n - 1]}" --timeout 2 2>/dev/null && continue
            waiting+=("node$n")
            if ! pid=$(pidfile_pid "$dir/cassandra.pid"); then
                show_log "$dir/logs/stdout.log"; show_log "$dir/logs/system.log"
                die "cassandra-cluster: node$n (${addrs[n - 1]}) exited during start-up"
            fi
        done
        ((${#waiting[@]})) || break
        if ((SECONDS >= deadline)); then
            die "cassandra-cluster: ${waiting[*]} gave no CQL answer within ${CASSANDRA_START_TIMEOUT:-240}s (left running; 'down cassandra-cluster' stops them)"
        fi
        sleep 1
    done
    log "cassandra-cluster: all three answer CQL after $((SECONDS - t0))s; waiting for nodetool status to show them UN"
    until cluster_all_up; do
        if ((SECONDS >= deadline)); then
            cluster_nodetool 1 status >&2 || true
            die "cassandra-cluster: not all three UN within ${CASSANDRA_START_TIMEOUT:-240}s"
        fi
        sleep 1
    done
    cluster_nodetool 1 status 2>/dev/null | grep -E '^(UN|DN|Datacenter)' >&2 || true
    log "cassandra-cluster: ready (3 nodes UN) after $((SECONDS - t0))s"
}

cassandra_cluster_down() {
    local n pid pids=()
    for n in 1 2 3; do
        if pid=$(pidfile_pid "$CLUSTER_DIR/node$n/cassandra.pid"); then
            log "cassandra-cluster: stopping node$n (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    ((${#pids[@]})) || { log "cassandra-cluster: no node started by this script is running"; return 0; }
    local deadline=$((SECONDS + 60))
    for pid in "${pids[@]}"; do
        while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.3; done
        pid_alive "$pid" && { log "cassandra-cluster: pid $pid still alive, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    done
    for n in 1 2 3; do rm -f "$CLUSTER_DIR/node$n/cassandra.pid"; done
}

cassandra_cluster_status() { # one line per node on stderr
    PYTHON=$(find_python) || return 1
    local -a addrs
    mapfile -t addrs < <(cluster_addrs)
    local n pid state
    for n in 1 2 3; do
        state=stopped
        if pid=$(pidfile_pid "$CLUSTER_DIR/node$n/cassandra.pid"); then state="pid $pid, no CQL answer"; fi
        if cluster_cql "${addrs[n - 1]}" --timeout 2 2>/dev/null; then
            state="answers CQL${pid:+ (pid $pid)}"
            [[ -n $pid ]] || state="$state, but not started by this script (another Cassandra?)"
        fi
        log "cassandra-cluster: node$n ${addrs[n - 1]}: $state"
        pid=
    done
}
