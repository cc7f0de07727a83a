# shellcheck shell=bash
# nginx as the load balancer in front of daphne processes, on loopback, for
# tests and trials; sourced by scripts/services (`up nginx`, `down nginx`).
# The production site is deploy/nginx.conf; this variant renders a whole
# nginx.conf around the same proxy rules (deploy/nginx-chat-proxy.conf,
# included from the checkout), with
#   NGINX_PORT         the port it listens on, on 127.0.0.1 (default 8080)
#   NGINX_UPSTREAMS    the daphne processes, host:port,... (default 127.0.0.1:8001,127.0.0.1:8002)
#   NGINX_FAIL_TIMEOUT seconds a process that refused a connection is left out (default 10)
#   NGINX_STATIC_ROOT  collectstatic's directory, served at /static/ (default: the app serves it)
# It runs as the current user, with its pidfile, logs and temp files in
# $STATE_DIR/nginx-<port>/ (so several may run side by side), and prints
# NGINX_URL=http://127.0.0.1:<port>.

NGINX_PORT_GIVEN=${NGINX_PORT:+1}
NGINX_PORT=${NGINX_PORT:-8080}
NGINX_UPSTREAMS=${NGINX_UPSTREAMS:-127.0.0.1:8001,127.0.0.1:8002}
NGINX_FAIL_TIMEOUT=${NGINX_FAIL_TIMEOUT:-10}
NGINX_INSTANCE_DIR=$STATE_DIR/nginx-$NGINX_PORT

nginx_bin() {
    local b
    for b in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
        if [[ -n $b && -x $b ]]; then echo "$b"; return 0; fi
    done
    return 1
}

# `scripts/services install nginx`: nginx, and the tools tests/deploy checks
# the deploy/ files with (systemd-analyze, openssl), without starting anything.
nginx_install() {
    nginx_bin >/dev/null || apt_install nginx-light
    command -v systemd-analyze >/dev/null || apt_install systemd
    command -v openssl >/dev/null || apt_install openssl
}

nginx_env() { echo "NGINX_URL=http://127.0.0.1:$NGINX_PORT"; }

nginx_running() { pidfile_pid "$NGINX_INSTANCE_DIR/nginx.pid" >/dev/null && tcp_open "$NGINX_PORT"; }

# nginx_render DIR: the whole nginx.conf of this instance, on stdout.
nginx_render() {
    local dir=$1 up static=${NGINX_STATIC_ROOT:-}
    # As root, nginx would hand its workers to `nobody`, who may not reach
    # the state dir; the current user's own workers need nothing.
    if ((EUID == 0)); then echo "user root root;"; fi
    cat <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      '';
    }

    upstream chat_app {
CONF
    IFS=, read -r -a ups <<<"$NGINX_UPSTREAMS"
    for up in "${ups[@]}"; do
        up=${up//[[:space:]]/}
        [[ -n $up ]] || continue
        printf '        server %s max_fails=1 fail_timeout=%ss;\n' "$up" "$NGINX_FAIL_TIMEOUT"
    done
    cat <<CONF
        keepalive 16;
    }

    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name _;
CONF
    if [[ -n $static ]]; then
        cat <<CONF
        location /static/ {
            alias ${static%/}/;
            add_header Cache-Control "public, max-age=300";
            add_header X-Content-Type-Options nosniff;
        }
CONF
    fi
    cat <<CONF
        include $REPO_DIR/deploy/nginx-chat-proxy.conf;
    }
}
CONF
}

nginx_up() {
    local bin dir=$NGINX_INSTANCE_DIR pid
    bin=$(nginx_bin) || { nginx_install; bin=$(nginx_bin) || die "nginx: not found after installing nginx-light"; }
    [[ -n $NGINX_UPSTREAMS ]] || die "nginx: NGINX_UPSTREAMS is empty"
    mkdir -p "$dir/tmp"
    nginx_render "$dir" >"$dir/nginx.conf.new"
    if ! "$bin" -t -q -p "$dir" -c "$dir/nginx.conf.new" -e "$dir/error.log" >&2 2>&1; then
        show_log "$dir/error.log"
        die "nginx: the rendered configuration ($dir/nginx.conf.new) does not pass nginx -t"
    fi
    mv -f "$dir/nginx.conf.new" "$dir/nginx.conf"
    if pid=$(pidfile_pid "$dir/nginx.pid"); then
        log "nginx: pid $pid already serves 127.0.0.1:$NGINX_PORT; reloading it (upstreams $NGINX_UPSTREAMS)"
        kill -HUP "$pid"
    else
        tcp_open "$NGINX_PORT" && die "nginx: 127.0.0.1:$NGINX_PORT is already taken"
        : >"$dir/error.log"
        log "nginx: starting on 127.0.0.1:$NGINX_PORT in front of $NGINX_UPSTREAMS (config and logs: $dir)"
        pid=$(spawn "$dir/stderr.log" "$bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;')
        echo "$pid" >"$dir/nginx.pid"
    fi
    if ! wait_for 15 tcp_open "$NGINX_PORT"; then
        show_log "$dir/error.log"; show_log "$dir/stderr.log"
        die "nginx: nothing listens on 127.0.0.1:$NGINX_PORT within 15s"
    fi
    log "nginx: ready"
}

nginx_down() {
    local f pid any=0
    # NGINX_PORT given: that instance; otherwise every instance of this state dir.
    local -a pidfiles=("$NGINX_INSTANCE_DIR/nginx.pid")
    if [[ -z ${NGINX_PORT_GIVEN:-} ]]; then pidfiles=("$STATE_DIR"/nginx-*/nginx.pid); fi
    for f in "${pidfiles[@]}"; do
        [[ -f $f ]] || continue
        if pid=$(pidfile_pid "$f"); then
            any=1
            # SIGQUIT: finish the requests in flight, then exit.
            kill -QUIT "$pid" 2>/dev/null || true
            wait_for 10 bash -c "! kill -0 $pid" || stop_pid nginx "$pid" 5
            log "nginx: stopped pid $pid"
        fi
        rm -f "$f"
    done
    ((any)) || log "nginx: not running from $STATE_DIR"
}
