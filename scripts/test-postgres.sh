#!/usr/bin/env bash
# A throwaway PostgreSQL 15 with pgvector on 127.0.0.1, for remem's tests and benchmarks.
#
#   eval "$(scripts/test-postgres.sh start /tmp/remem-pg)"   # exports REMEM_TEST_POSTGRES
#   scripts/test-postgres.sh stop /tmp/remem-pg
#
# `start` installs what is missing first: PostgreSQL 15 and its server headers from
# Debian, and pgvector 0.8, built from Debian trixie's source package (bookworm has none),
# with a private apt list so the system's sources are untouched.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

install_postgres() {
    if [ ! -x "$PGBIN/initdb" ] || [ ! -f /usr/include/postgresql/15/server/postgres.h ]; then
        $SUDO apt-get install -y -q postgresql-15 postgresql-server-dev-15 dpkg-dev make gcc >&2
    fi
    if [ ! -f "$(pg_config --sharedir)/extension/vector.control" ]; then
        local build
        build=$(mktemp -d)
        mkdir -p "$build/lists/partial"
        cat > "$build/trixie.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
        local apt_options=(-o "Dir::Etc::sourcelist=$build/trixie.sources"
            -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$build/lists")
        apt-get "${apt_options[@]}" update -q >&2
        (cd "$build" && apt-get "${apt_options[@]}" source -q pgvector >&2)
        (cd "$build"/pgvector-*/ && make OPTFLAGS="" >&2 && $SUDO make install >&2)
        rm -rf "$build"
    fi
}

start() {
    local dir=$1
    install_postgres
    mkdir -p "$dir"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local run=()
    if [ "$(id -u)" -eq 0 ]; then  # PostgreSQL refuses to run as root
        chown postgres "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >&2
    "${run[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2
    psql -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE remem_test" >&2
    psql -h 127.0.0.1 -p "$port" -U postgres -d remem_test -q -c "CREATE EXTENSION vector" >&2
    echo "export REMEM_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/remem_test"
}

stop() {
    local dir=$1
    local run=()
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "${2:?usage: $0 start DIR}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    install) install_postgres ;;
    *) echo "usage: $0 start DIR | stop DIR | install" >&2; exit 2 ;;
esac
