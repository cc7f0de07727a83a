# Sourced by scripts/services: the S3-compatible object store for
# CHAT_FILE_STORAGE=s3, SeaweedFS (Apache-2.0) at one pinned commit, built
# from the Go module proxy through the wrapper module in services.d/seaweedfs
# (its go.mod/go.sum pin every module) into $CACHE_DIR/seaweedfs-<version>.
# `weed server` runs master, volume, filer and S3 gateway in one process on
# loopback; the S3 gateway checks the credentials printed by s3_env; the
# bucket is made with `weed shell`.

S3_DIR=$STATE_DIR/seaweedfs
SEAWEED_SRC=$HELPERS/seaweedfs
S3_PORT=18333
S3_MASTER_PORT=19333
S3_VOLUME_PORT=18080
S3_FILER_PORT=18888
S3_BUCKET=chat-files
S3_ACCESS_KEY=chat-local-access
S3_SECRET_KEY=chat-local-secret-not-for-production

seaweedfs_version() {
    sed -n 's#^[[:space:]]*github\.com/seaweedfs/seaweedfs[[:space:]]\+\(v[^[:space:]]*\).*#\1#p' "$SEAWEED_SRC/go.mod" | head -n1
}

s3_env() {
    echo "CHAT_FILE_STORAGE=s3"
    echo "CHAT_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
    echo "CHAT_S3_BUCKET=$S3_BUCKET"
    echo "CHAT_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY"
    echo "CHAT_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
    echo "CHAT_S3_REGION=us-east-1"
}

s3_http_answers() { # the S3 gateway answers HTTP (403 without credentials is an answer)
    (
        exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT" || exit 1
        printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 3 line <&3 || exit 1
        [[ $line == HTTP/1.1\ * ]]
    ) 2>/dev/null
}

s3_running() { s3_http_answers; }

seaweedfs_build() { # prints the path of the (cached) weed binary
    local ver stamp out dir go
    ver=$(seaweedfs_version)
    dir=$CACHE_DIR/seaweedfs-$ver
    out=$dir/weed
    stamp=$(cat "$SEAWEED_SRC/go.mod" "$SEAWEED_SRC/go.sum" | sha256sum | cut -c1-16)
    if [[ -x $out && -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]]; then
        echo "$out"; return 0
    fi
    go=$(find_go) || { apt_install golang-go; go=$(find_go) || die "s3: no Go toolchain"; }
    log "s3: building SeaweedFS $ver with $($go version | cut -d' ' -f3) into $out (first time only: 20-30 minutes on 2 busy cores)"
    mkdir -p "$dir"
    local t0=$SECONDS
    if ! (cd "$SEAWEED_SRC" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
            "$go" build -trimpath -o "$out.tmp.$$" github.com/seaweedfs/seaweedfs/weed) >&2; then
        rm -f "$out.tmp.$$"
        die "s3: go build of SeaweedFS (wrapper $SEAWEED_SRC) failed"
    fi
    mv -f "$out.tmp.$$" "$out"
    echo "$stamp" >"$dir/.stamp"
    log "s3: built in $((SECONDS - t0))s"
    echo "$out"
}

s3_up() {
    if s3_http_answers; then
        log "s3: already answering on 127.0.0.1:$S3_PORT, reusing it"
        return 0
    fi
    local t0=$SECONDS pid bin logfile=$S3_DIR/weed.log
    bin=$(seaweedfs_build)
    if pid=$(pidfile_pid "$S3_DIR/weed.pid"); then
        log "s3: pid $pid is still starting up, waiting for it"
    else
        mkdir -p "$S3_DIR/data"
        cat >"$S3_DIR/s3.json" <<JSON
{"identities": [{"name": "chat", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
        : >"$logfile"
        log "s3: starting SeaweedFS $(seaweedfs_version) (data in $S3_DIR/data, log: $logfile)"
        pid=$(spawn "$logfile" "$bin" server -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -master.port="$S3_MASTER_PORT" -master.volumeSizeLimitMB=64 -volume.port="$S3_VOLUME_PORT" -volume.max=20 \
            -filer -filer.port="$S3_FILER_PORT" -s3 -s3.port="$S3_PORT" -s3.config="$S3_DIR/s3.json")
        echo "$pid" >"$S3_DIR/weed.pid"
    fi
    local deadline=$((SECONDS + 120))
    until s3_http_answers; do
        if ! pid_alive "$pid"; then show_log "$logfile"; die "s3: SeaweedFS (pid $pid) exited during startup"; fi
        if ((SECONDS >= deadline)); then show_log "$logfile"; die "s3: no answer on 127.0.0.1:$S3_PORT within 120s"; fi
        sleep 0.5
    done
    # The bucket (idempotent); the filer may take a moment after the gateway.
    until echo "s3.bucket.create -name $S3_BUCKET" | "$bin" shell -master="127.0.0.1:$S3_MASTER_PORT" 2>&1 \
            | tee -a "$logfile" | grep -qiE "created|exist"; do
        if ((SECONDS >= deadline)); then show_log "$logfile"; die "s3: could not create the bucket $S3_BUCKET"; fi
        sleep 1
    done
    log "s3: ready after $((SECONDS - t0))s (bucket $S3_BUCKET)"
}

s3_down() {
    local pid
    if pid=$(pidfile_pid "$S3_DIR/weed.pid"); then
        stop_pid s3 "$pid" 20
    else
        log "s3: not started by this script (no live pidfile)"
    fi
    rm -f "$S3_DIR/weed.pid"
}
