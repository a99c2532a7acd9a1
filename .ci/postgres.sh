# shellcheck shell=bash
# A throwaway PostgreSQL server for the tests of the PostgreSQL token store (issue 7).
#
# Sourced by .ci/run (or by hand: `source .ci/postgres.sh && postgres_start`). postgres_install
# installs the Debian package `postgresql` if no server binaries are found (the tests then
# start throwaway servers of their own, see token-core/src/store/postgres_test_server.rs);
# postgres_start (for the benchmark) also does that, and creates a cluster
# in a new temporary directory owned by an unprivileged user (the server refuses to run as
# root), starts it on a free port listening on 127.0.0.1 only (its unix socket in the
# temporary directory), exports
#
#   TOKEN_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:<port>/postgres
#   TOKEN_TEST_REQUIRE_POSTGRES=1   (the tests then fail instead of skipping without a URL)
#
# and stops the server and removes the directory when the shell exits (an EXIT trap).

postgres_bindir() {
    local dir
    for dir in "${TOKEN_PG_BINDIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Runs a command as the unprivileged owner of the cluster.
postgres_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$TOKEN_PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

postgres_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the server binaries' directory, installing the Debian package postgresql first if
# there is none.
postgres_install() {
    if ! postgres_bindir; then
        echo "postgres: no server binaries found; installing the Debian package postgresql" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        postgres_bindir || { echo "postgres: initdb not found after installing" >&2; return 1; }
    fi
}

postgres_start() {
    local bindir attempt port
    bindir=$(postgres_install) || return 1
    TOKEN_PG_BINDIR=$bindir

    if [ "$(id -u)" -eq 0 ]; then
        if id -u postgres >/dev/null 2>&1; then
            TOKEN_PG_OWNER=postgres
        else
            TOKEN_PG_OWNER=token-ci-pg
            id -u "$TOKEN_PG_OWNER" >/dev/null 2>&1 ||
                useradd --system --no-create-home --shell /usr/sbin/nologin "$TOKEN_PG_OWNER"
        fi
    else
        TOKEN_PG_OWNER=$(id -un)
    fi

    TOKEN_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/token-ci-pg.XXXXXX")
    chmod 700 "$TOKEN_PG_DIR"
    mkdir "$TOKEN_PG_DIR/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$TOKEN_PG_OWNER" "$TOKEN_PG_DIR"
    fi
    trap postgres_stop EXIT

    postgres_as_owner "$bindir/initdb" -D "$TOKEN_PG_DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$TOKEN_PG_DIR/initdb.log" 2>&1 ||
        { cat "$TOKEN_PG_DIR/initdb.log" >&2; return 1; }

    # A free port: a random one nobody listens on; if the server still cannot bind it
    # (taken in between), try another.
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 30000))
        postgres_port_busy "$port" && continue
        if postgres_as_owner "$bindir/pg_ctl" -D "$TOKEN_PG_DIR/data" -l "$TOKEN_PG_DIR/server.log" \
            -w -t 60 -o "-p $port -h 127.0.0.1 -k $TOKEN_PG_DIR/socket -c max_connections=300 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null; then
            export TOKEN_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
            export TOKEN_TEST_REQUIRE_POSTGRES=1
            echo "postgres: $("$bindir/postgres" --version) on 127.0.0.1:$port ($TOKEN_PG_DIR)"
            return 0
        fi
        echo "postgres: could not start on port $port (attempt $attempt)" >&2
        tail -n 5 "$TOKEN_PG_DIR/server.log" >&2 || true
    done
    return 1
}

postgres_stop() {
    if [ -n "${TOKEN_PG_DIR:-}" ] && [ -d "$TOKEN_PG_DIR" ]; then
        if [ -n "${TOKEN_PG_BINDIR:-}" ] && [ -f "$TOKEN_PG_DIR/data/postmaster.pid" ]; then
            postgres_as_owner "$TOKEN_PG_BINDIR/pg_ctl" -D "$TOKEN_PG_DIR/data" -m immediate \
                -w -t 30 stop >/dev/null 2>&1 || true
        fi
        rm -rf "$TOKEN_PG_DIR"
    fi
    TOKEN_PG_DIR=
}
