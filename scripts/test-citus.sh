#!/usr/bin/env bash
# A throwaway Citus cluster on 127.0.0.1 (a coordinator and two workers, PostgreSQL 15 with
# pgvector and Citus on each), for remem's tests and benchmarks.
#
#   eval "$(scripts/test-citus.sh start /tmp/remem-citus)"   # exports REMEM_TEST_CITUS
#   scripts/test-citus.sh stop /tmp/remem-citus
#
# Citus (AGPL-3.0) is a test dependency, never shipped with remem: `start` installs it with
# the `install.sh` of the folder REMEM_CITUS_DIR names (default: ../shared/citus beside the
# repository), and PostgreSQL and pgvector as scripts/test-postgres.sh does. Each node is
# small (shared_buffers 32MB, no fsync: a test cluster), and Citus's update check is off.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PGLIB=/usr/lib/postgresql/15/lib
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CITUS_DIR=${REMEM_CITUS_DIR:-$ROOT/../shared/citus}
WORKERS=2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

install_citus() {
    "$ROOT/scripts/test-postgres.sh" install
    if [ ! -f /usr/share/postgresql/15/extension/citus.control ]; then
        [ -f "$CITUS_DIR/install.sh" ] || {
            echo "no Citus installer at $CITUS_DIR/install.sh: set REMEM_CITUS_DIR" >&2
            exit 1
        }
        $SUDO bash "$CITUS_DIR/install.sh" >&2
    fi
    command -v nm >/dev/null || $SUDO apt-get install -y -q binutils >&2
    local missing
    missing=$(unresolved_symbols "$PGLIB/citus.so")
    if [ -n "$missing" ]; then  # the prebuilt links (ldd is happy) but cannot load here
        echo "citus.so needs symbols this PostgreSQL lacks ($missing): building it" >&2
        build_citus
    fi
}

# The symbols a library needs that neither the postgres binary nor a library either links defines.
unresolved_symbols() {
    local library=$1 postgres=$PGBIN/postgres
    comm -23 \
        <(nm -D --undefined-only "$library" | awk '$1 == "U" {print $2}' | sed 's/@.*//' | sort -u) \
        <({ nm -D --defined-only "$postgres"
            for linked in $(ldd "$library" "$postgres" | awk '/=>/ {print $3}' | sort -u); do
                nm -D --defined-only "$linked"
            done; } | awk '{print $3}' | sed 's/@.*//' | sort -u) | tr '\n' ' '
}

# Citus from the source tarball beside install.sh (as install.sh does when ldd finds a gap).
build_citus() {
    $SUDO apt-get install -y -q postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev \
        libzstd-dev libkrb5-dev libssl-dev make gcc >&2
    local source
    source=$(mktemp -d)
    tar -C "$source" -xzf "$CITUS_DIR"/citus-*-src.tar.gz
    (cd "$source"/citus-*/ && ./configure PG_CONFIG="$PGBIN/pg_config" >&2 \
        && make -j2 >&2 && $SUDO make install >&2)
    rm -rf "$source"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_node DIR NAME PORT: one initdb folder with Citus preloaded, running on PORT
start_node() {
    local dir=$1 name=$2 port=$3
    local run=()
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$PGBIN/initdb" -D "$dir/$name" -A trust -U postgres --no-sync >&2
    cat >> "$dir/$name/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
citus.enable_statistics_collection = off
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    "${run[@]}" "$PGBIN/pg_ctl" -D "$dir/$name" -l "$dir/$name.log" -w start >&2
    psql -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE remem_test" >&2
    psql -h 127.0.0.1 -p "$port" -U postgres -d remem_test -q \
        -c "CREATE EXTENSION citus" -c "CREATE EXTENSION vector" >&2
}

start() {
    local dir=$1
    install_citus
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"  # PostgreSQL refuses to run as root
    local coordinator
    coordinator=$(free_port)
    start_node "$dir" coordinator "$coordinator"
    local sql="SELECT citus_set_coordinator_host('127.0.0.1', $coordinator);"
    for index in $(seq 1 $WORKERS); do
        local port
        port=$(free_port)
        start_node "$dir" "worker$index" "$port"
        sql="$sql SELECT citus_add_node('127.0.0.1', $port);"
    done
    psql -h 127.0.0.1 -p "$coordinator" -U postgres -d remem_test -q -o /dev/null -c "$sql" >&2
    echo "export REMEM_TEST_CITUS=postgresql://postgres@127.0.0.1:$coordinator/remem_test"
}

stop() {
    local dir=$1
    local run=()
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    for node in "$dir"/coordinator "$dir"/worker*; do
        [ -d "$node" ] && { "${run[@]}" "$PGBIN/pg_ctl" -D "$node" -m fast -w stop >&2 || true; }
    done
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "${2:?usage: $0 start DIR}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    install) install_citus ;;
    *) echo "usage: $0 start DIR | stop DIR | install" >&2; exit 2 ;;
esac
