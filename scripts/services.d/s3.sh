# Sourced by scripts/services: the S3-compatible object store for
# CHAT_FILE_STORAGE=s3 and tests/files/test_s3_storage.py: gofakes3 (MIT),
# built from the Go module proxy through the wrapper in services.d/gofakes3
# (its go.mod/go.sum pin every module) into $CACHE_DIR/gofakes3-<version>.
# Objects live in the server's memory; it accepts any credentials.
# (SeaweedFS, Apache-2.0, was the first choice: its build from the proxy did
# not finish within 45 minutes on this project's 2 shared cores; docs/files.md.)

S3_DIR=$STATE_DIR/s3
S3_SRC=$HELPERS/gofakes3
S3_PORT=18333
S3_BUCKET=chat-files

gofakes3_version() {
    sed -n 's#^require[[:space:]]\+github\.com/johannesboyne/gofakes3[[:space:]]\+\(v[^[:space:]]*\).*#\1#p' "$S3_SRC/go.mod" | head -n1
}

s3_env() {
    echo "CHAT_FILE_STORAGE=s3"
    echo "CHAT_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
    echo "CHAT_S3_BUCKET=$S3_BUCKET"
    echo "CHAT_S3_ACCESS_KEY_ID=chat-local"
    echo "CHAT_S3_SECRET_ACCESS_KEY=chat-local-secret"
    echo "CHAT_S3_REGION=us-east-1"
}

s3_http_answers() { # the bucket answers a HEAD (gofakes3 checks no signature)
    (
        exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT" || exit 1
        printf 'HEAD /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$S3_BUCKET" >&3
        IFS= read -r -t 3 line <&3 || exit 1
        [[ $line == HTTP/1.1\ 200* ]]
    ) 2>/dev/null
}

s3_running() { s3_http_answers; }

gofakes3_build() { # prints the path of the (cached) server binary
    local ver stamp out dir go
    ver=$(gofakes3_version)
    dir=$CACHE_DIR/gofakes3-$ver
    out=$dir/gofakes3
    stamp=$(cat "$S3_SRC/main.go" "$S3_SRC/go.mod" "$S3_SRC/go.sum" | sha256sum | cut -c1-16)
    if [[ -x $out && -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]]; then
        echo "$out"; return 0
    fi
    go=$(find_go) || { apt_install golang-go; go=$(find_go) || die "s3: no Go toolchain"; }
    log "s3: building gofakes3 $ver with $($go version | cut -d' ' -f3) into $out (first time only)"
    mkdir -p "$dir"
    local t0=$SECONDS
    if ! (cd "$S3_SRC" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" "$go" build -trimpath -o "$out.tmp.$$" .) >&2; then
        rm -f "$out.tmp.$$"
        die "s3: go build of $S3_SRC failed"
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
    local t0=$SECONDS pid bin logfile=$S3_DIR/gofakes3.log
    if pid=$(pidfile_pid "$S3_DIR/gofakes3.pid"); then
        log "s3: pid $pid is still starting up, waiting for it"
    else
        bin=$(gofakes3_build)
        tcp_open "$S3_PORT" && die "s3: 127.0.0.1:$S3_PORT is taken by something that is not our S3 server"
        mkdir -p "$S3_DIR"
        : >"$logfile"
        log "s3: starting gofakes3 $(gofakes3_version) on 127.0.0.1:$S3_PORT (log: $logfile)"
        pid=$(spawn "$logfile" "$bin" -listen "127.0.0.1:$S3_PORT" -bucket "$S3_BUCKET")
        echo "$pid" >"$S3_DIR/gofakes3.pid"
    fi
    local deadline=$((SECONDS + 30))
    until s3_http_answers; do
        if ! pid_alive "$pid"; then show_log "$logfile"; die "s3: gofakes3 (pid $pid) exited during startup"; fi
        if ((SECONDS >= deadline)); then show_log "$logfile"; die "s3: no answer on 127.0.0.1:$S3_PORT within 30s"; fi
        sleep 0.3
    done
    log "s3: ready after $((SECONDS - t0))s (bucket $S3_BUCKET)"
}

s3_down() {
    local pid
    if pid=$(pidfile_pid "$S3_DIR/gofakes3.pid"); then
        stop_pid s3 "$pid" 10
    else
        log "s3: not started by this script (no live pidfile)"
    fi
    rm -f "$S3_DIR/gofakes3.pid"
}
