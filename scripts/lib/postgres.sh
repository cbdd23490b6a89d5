# Throwaway local PostgreSQL for the demo, the tests and CI. Sourced by scripts/stack, not run.
#
#   pg_install   apt-get install the server and libpq headers when missing
#   pg_up        initdb on first use, start the server, wait until ready, create role `hms` and db `hms_act`
#   pg_down      stop the server started from this stack dir (and nothing else)
#   pg_restart   pg_down, then pg_up
#   pg_status    say whether it runs (exit status 1 when it does not)
#   pg_env       print the connection settings as `export` lines
#
# Data lives in $HMS_STACK_DIR/postgres/data, the unix socket in $HMS_STACK_DIR/postgres/run (mode 0700),
# the log in $HMS_STACK_DIR/postgres/postgres.log. The server listens on 127.0.0.1:$HMS_PG_PORT only and
# asks TCP clients for a scram-sha-256 password. initdb and the server refuse to run as root, so as root
# both run as the `postgres` system user, which then owns $HMS_STACK_DIR/postgres.
#
# TLS is always on beside plaintext (ssl = on; the client's sslmode decides): the server presents the local
# CA's certificate (scripts/lib/tls.sh), copied into the data folder where only the server's OS user may read
# its key. `pg_env` prints POSTGRES_TLS_URL, which connects with sslmode=verify-full and that CA.
#
# With CI=true or HMS_STACK_FAST=1 the server trades durability for speed (fsync and full_page_writes off):
# right for tests, wrong for benchmarks, which must run with the durable defaults. Only a machine crash can
# lose a commit then. synchronous_commit stays on: with it off, killing the server loses commits it already
# acknowledged, and hms-act acks a message once its commit returns, so the fault suite's database-kill
# scenario would find a lost result that production (synchronous_commit on) cannot lose.

: "${HMS_STACK_DIR:?HMS_STACK_DIR must be set}"
# The stack's certificates (_tls_dir); sourced here too, because the tests source this file alone to restart a server.
# shellcheck source=tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/tls.sh"
HMS_PG_PORT="${HMS_PG_PORT:-55432}"

# The role and password the tests and the demo use. A throwaway secret for a loopback-only server.
HMS_PG_USER="hms"
HMS_PG_PASSWORD="hms-local-only"
HMS_PG_DB="hms_act"
# A second role that owns nothing: what `hms-act serve` runs as when an owner role migrates
# (postgres.app_role, docs/security.md "Database roles"); the role-separation tests use it.
HMS_PG_SERVE_USER="hms_serve"
HMS_PG_SERVE_PASSWORD="hms-serve-local-only"

_pg_base() { (cd "$HMS_STACK_DIR" 2>/dev/null && printf '%s/postgres' "$(pwd -P)") || printf '%s/postgres' "$HMS_STACK_DIR"; }
_pg_data() { printf '%s/data' "$(_pg_base)"; }
_pg_sock() { printf '%s/run' "$(_pg_base)"; }
_pg_log() { printf '%s/postgres.log' "$(_pg_base)"; }

# The server's binary folder: Debian keeps initdb, pg_ctl and postgres off PATH.
_pg_bindir() {
    local dir=""
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
    fi
    if [ -z "$dir" ] || [ ! -x "$dir/pg_ctl" ]; then
        dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    fi
    [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] || die "PostgreSQL server binaries not found; run pg_install"
    printf '%s' "$dir"
}

# The OS user that owns the data and runs the server: `postgres` when we are root, else ourselves.
_pg_os_user() {
    if [ "$(id -u)" -eq 0 ]; then printf 'postgres'; else id -un; fi
}

# Runs a command as the server's OS user, from a folder that user can enter (initdb and pg_ctl warn when
# they cannot read the current directory, e.g. /root).
_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$(_pg_base)" && runuser -u postgres -- "$@")
    else
        (cd "$(_pg_base)" && "$@")
    fi
}

# The pid in postmaster.pid when that process is alive *and* runs in our data dir (a recycled pid does not
# count). Prints nothing and fails otherwise.
_pg_pid() {
    local data pidfile pid
    data="$(_pg_data)"
    pidfile="$data/postmaster.pid"
    [ -f "$pidfile" ] || return 1
    pid="$(head -n 1 "$pidfile" 2>/dev/null)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$data" ] || return 1
    printf '%s' "$pid"
}

# Pids of processes still running inside our data dir: backends left behind by a postmaster that was
# killed with -9. They hold the old shared memory, so a new postmaster refuses to start until they exit.
_pg_orphans() {
    local data proc
    data="$(_pg_data)"
    for proc in /proc/[0-9]*; do
        [ "$(readlink "$proc/cwd" 2>/dev/null)" = "$data" ] && printf '%s\n' "${proc#/proc/}"
    done
    return 0
}

_pg_no_orphans() { [ -z "$(_pg_orphans)" ]; }

_pg_fast() { [ "${CI:-}" = "true" ] || [ "${HMS_STACK_FAST:-}" = "1" ]; }

# Makes every folder above the base traversable by the `postgres` user (root only). The stack dir may sit
# under a folder only root may enter; `o+x` lets others pass through without listing or reading anything.
_pg_make_traversable() {
    [ "$(id -u)" -eq 0 ] || return 0
    local dir
    dir="$(dirname "$(_pg_base)")"
    while [ "$dir" != "/" ]; do
        if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
            log "chmod o+x $dir (so the postgres user can reach its data)"
            chmod o+x "$dir"
        fi
        dir="$(dirname "$dir")"
    done
}

pg_install() {
    apt_ensure postgresql-15 libpq-dev
}

# A quarter of the machine's memory, at most 4GB and at least 128MB (the server's default), unless
# HMS_PG_SHARED_BUFFERS says otherwise (a PostgreSQL size: 512MB, 2GB). Takes effect on a (re)start.
_pg_shared_buffers() {
    if [ -n "${HMS_PG_SHARED_BUFFERS:-}" ]; then
        printf '%s\n' "$HMS_PG_SHARED_BUFFERS"
        return 0
    fi
    local total_kb mb
    total_kb="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)"
    mb=$(( ${total_kb:-524288} / 4096 ))
    [ "$mb" -gt 4096 ] && mb=4096
    [ "$mb" -lt 128 ] && mb=128
    printf '%sMB\n' "$mb"
}

# Writes the settings we own. postgresql.conf includes hms.conf, which is rewritten on every `pg_up`, so a
# new port or mode takes effect on the next start.
_pg_write_config() {
    local data sock mode buffers
    data="$(_pg_data)"
    sock="$(_pg_sock)"
    buffers="$(_pg_shared_buffers)"
    if _pg_fast; then
        mode="fsync = off
full_page_writes = off"
    else
        mode="# durable defaults (fsync, synchronous_commit, full_page_writes on)"
    fi
    _pg_install_certificate
    _pg_as tee "$data/hms.conf" >/dev/null <<EOF
# Written by scripts/lib/postgres.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $HMS_PG_PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
logging_collector = off
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
# Per-statement figures for the benchmark's history comparison (bench/README.md, "Flat with history");
# takes effect on a (re)start, not a reload.
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
# The outbox and timers are queues (docs/operations.md, "PostgreSQL settings"): look for dead rows every 10 s,
# not every minute.
autovacuum_naptime = 10s
# The indexes that take inserts at random places (runs, tasks, audit and inbox keys are hashes) must stay in
# shared memory as history grows; the default 128MB held them up to ~200,000 runs (docs/operations.md).
shared_buffers = $buffers
# Fewer checkpoints, so fewer full-page images of those index pages in the WAL (durable mode).
max_wal_size = 8GB
checkpoint_timeout = 15min
$mode
EOF
    # Socket: the server's OS user only, by peer identity (the role setup below). TCP: loopback, password.
    _pg_as tee "$data/pg_hba.conf" >/dev/null <<EOF
# Written by scripts/lib/postgres.sh.
local   all  all                 peer
host    all  all  127.0.0.1/32   scram-sha-256
EOF
}

# Copies the stack's server certificate and key into the data folder: PostgreSQL refuses a key that others
# may read, so it is owned by the server's OS user with mode 0600.
_pg_install_certificate() {
    local data tls owner=()
    data="$(_pg_data)"
    tls="$(_tls_dir)"
    [ "$(id -u)" -eq 0 ] && owner=(-o postgres -g postgres)
    install -m 0644 "${owner[@]}" "$tls/server.pem" "$data/server.crt" || die "cannot copy $tls/server.pem"
    install -m 0600 "${owner[@]}" "$tls/server.key" "$data/server.key" || die "cannot copy $tls/server.key"
}

_pg_init() {
    local data base
    data="$(_pg_data)"
    base="$(_pg_base)"
    mkdir -p "$base"
    if [ "$(id -u)" -eq 0 ]; then
        _pg_make_traversable
        chown postgres:postgres "$base"
    fi
    _pg_as mkdir -p "$(_pg_sock)"
    chmod 0700 "$(_pg_sock)"
    [ -f "$data/PG_VERSION" ] && return 0
    log "initdb $data"
    _pg_as "$(_pg_bindir)/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null || die "initdb failed"
    _pg_as sh -c "printf '\ninclude_if_exists = '\''hms.conf'\''\n' >> '$data/postgresql.conf'"
}

# Clears what an unclean stop (kill -9) leaves: waits for orphaned backends to exit (they notice the
# postmaster's death within a second or so), then removes the stale lock files.
_pg_clean_stale() {
    local data
    data="$(_pg_data)"
    [ -f "$data/postmaster.pid" ] || return 0
    _pg_pid >/dev/null && return 0
    log "removing stale postmaster.pid (unclean stop)"
    if ! wait_for 30 _pg_no_orphans; then
        die "old PostgreSQL processes still run in $data: $(_pg_orphans | tr '\n' ' ')"
    fi
    rm -f "$data/postmaster.pid" "$(_pg_sock)/.s.PGSQL.$HMS_PG_PORT.lock"
}

_pg_psql_admin() {
    _pg_as "$(_pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(_pg_sock)" -p "$HMS_PG_PORT" -d postgres "$@"
}

# Creates (or resets) role `hms` with its password and database `hms_act` owned by it, and the role
# `hms_serve`, which owns nothing. Idempotent.
_pg_setup_roles() {
    _pg_psql_admin >/dev/null <<EOF || die "could not create role $HMS_PG_USER"
SELECT 'CREATE ROLE $HMS_PG_USER LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$HMS_PG_USER')
\gexec
ALTER ROLE $HMS_PG_USER LOGIN PASSWORD '$HMS_PG_PASSWORD';
SELECT 'CREATE DATABASE $HMS_PG_DB OWNER $HMS_PG_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$HMS_PG_DB')
\gexec
SELECT 'CREATE ROLE $HMS_PG_SERVE_USER LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$HMS_PG_SERVE_USER')
\gexec
ALTER ROLE $HMS_PG_SERVE_USER LOGIN PASSWORD '$HMS_PG_SERVE_PASSWORD';
GRANT pg_read_all_stats TO $HMS_PG_USER;
\\c $HMS_PG_DB
-- In a schema of its own, apart from hms-act's (migrations grant on everything in theirs).
CREATE SCHEMA IF NOT EXISTS hms_stats;
GRANT USAGE ON SCHEMA hms_stats TO $HMS_PG_USER;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA hms_stats;
EOF
}

_pg_ready() { "$(_pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$HMS_PG_PORT" -d postgres; }

pg_up() {
    _pg_init
    _pg_write_config
    if _pg_pid >/dev/null; then
        log "PostgreSQL already running (pid $(_pg_pid), port $HMS_PG_PORT)"
        # hms.conf was just rewritten (TLS files, settings): a reload applies what may change while running.
        _pg_as "$(_pg_bindir)/pg_ctl" -D "$(_pg_data)" reload >/dev/null || die "pg_ctl reload failed"
    else
        _pg_clean_stale
        log "starting PostgreSQL on 127.0.0.1:$HMS_PG_PORT ($(_pg_fast && echo 'fast, not durable' || echo durable))"
        _pg_as touch "$(_pg_log)"
        _pg_as "$(_pg_bindir)/pg_ctl" -D "$(_pg_data)" -l "$(_pg_log)" -w -t 60 start >/dev/null \
            || { tail -n 20 "$(_pg_log)" >&2; die "PostgreSQL did not start (log: $(_pg_log))"; }
    fi
    wait_for 60 _pg_ready || die "PostgreSQL not ready on 127.0.0.1:$HMS_PG_PORT (log: $(_pg_log))"
    _pg_setup_roles
}

pg_down() {
    local data
    data="$(_pg_data)"
    if ! _pg_pid >/dev/null; then
        log "PostgreSQL not running"
        return 0
    fi
    log "stopping PostgreSQL (pid $(_pg_pid))"
    _pg_as "$(_pg_bindir)/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed"
}

pg_restart() {
    pg_down
    pg_up
}

pg_status() {
    local pid
    if pid="$(_pg_pid)"; then
        echo "postgres: running (pid $pid, 127.0.0.1:$HMS_PG_PORT, data $(_pg_data))"
    else
        echo "postgres: not running"
        return 1
    fi
}

pg_env() {
    cat <<EOF
export POSTGRES_HOSTNAME=127.0.0.1
export POSTGRES_PORT=$HMS_PG_PORT
export POSTGRES_USER=$HMS_PG_USER
export POSTGRES_PASSWORD=$HMS_PG_PASSWORD
export POSTGRES_DB=$HMS_PG_DB
export POSTGRES_URL=postgresql://$HMS_PG_USER:$HMS_PG_PASSWORD@127.0.0.1:$HMS_PG_PORT/$HMS_PG_DB
export POSTGRES_SERVE_URL=postgresql://$HMS_PG_SERVE_USER:$HMS_PG_SERVE_PASSWORD@127.0.0.1:$HMS_PG_PORT/$HMS_PG_DB
export POSTGRES_TLS_URL='postgresql://$HMS_PG_USER:$HMS_PG_PASSWORD@localhost:$HMS_PG_PORT/$HMS_PG_DB?sslmode=verify-full&sslrootcert=$(cd "$(_tls_dir)" && pwd -P)/ca.pem'
EOF
}
