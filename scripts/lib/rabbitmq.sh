# A private, throwaway RabbitMQ node for the demo, the tests and CI. Sourced by scripts/stack, not run.
#
# The node is configured entirely by environment (no systemd, no /etc/rabbitmq): its own node name, data,
# logs, pid file, Erlang cookie (a private HOME), AMQP port, distribution port and epmd port, all bound to
# 127.0.0.1. It never touches another node on the machine, and `rmq_down` stops only this one.
#
#   HMS_STACK_DIR       where data and logs live (required; scripts/stack sets it)
#   HMS_AMQP_PORT       AMQP listener port (default 55672)
#   HMS_AMQPS_PORT      AMQPS (TLS) listener port (default HMS_AMQP_PORT + 9)
#   HMS_AMQP_USER       user created on the node (default hms)
#   HMS_AMQP_PASSWORD   its password (default hms-local; a throwaway for a loopback-only test node)
#
# Every start imports deploy/rabbitmq/definitions.json (the topology production imports too) and creates
# the least-privilege users of deploy/rabbitmq/create-users.sh with loopback-only passwords: hms-act (the
# service), hms-demo-worker (demo-worker and the agents' own queues) and hms-publisher (hms.events only).
# The administrator above keeps full rights: the tests declare exchanges and queues of their own.
#
# TLS is always on beside plaintext: a second listener on HMS_AMQPS_PORT presents the local CA's server
# certificate (scripts/lib/tls.sh); `rmq_env` prints AMQPS_URL and HMS_ACT_AMQPS_URL, which name host
# `localhost` (rabbitmq-c 0.11 matches the host against the certificate's DNS names only, not IP addresses).
#
# Derived ports (all loopback): distribution = AMQP port + 1, private epmd = AMQP port + 2, rabbitmqctl's
# own distribution range = AMQP port + 10 … + 19. None of them is a RabbitMQ or Erlang default.

# The stack's certificates (_tls_dir); sourced here too, because the tests source this file alone to restart a server.
# shellcheck source=tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/tls.sh"

# The package's unwrapped scripts: the PATH wrappers (/usr/sbin/rabbitmqctl…) switch to the rabbitmq user
# and its home, which would lose our environment.
RMQ_BIN_DIR="${RMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"

# deploy/rabbitmq/ of this checkout (also when sourced from elsewhere than scripts/stack).
RMQ_DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/rabbitmq" && pwd)"

# The least-privilege users of the local node and their (loopback-only, throwaway) passwords.
RMQ_SERVICE_USER=hms-act
RMQ_SERVICE_PASSWORD=hms-act-local
RMQ_WORKER_USER=hms-demo-worker
RMQ_WORKER_PASSWORD=hms-demo-worker-local
RMQ_PUBLISHER_USER=hms-publisher
RMQ_PUBLISHER_PASSWORD=hms-publisher-local

# The largest message the node accepts (8 MiB). RabbitMQ 3.10's default is 128 MiB; a small limit keeps the
# "message above max size is refused" conformance test cheap. Tests read it from HMS_AMQP_MAX_MESSAGE_SIZE.
RMQ_MAX_MESSAGE_SIZE=8388608

_rmq_setup_env() {
    : "${HMS_STACK_DIR:?HMS_STACK_DIR must be set}"
    HMS_AMQP_PORT="${HMS_AMQP_PORT:-55672}"
    HMS_AMQPS_PORT="${HMS_AMQPS_PORT:-$((HMS_AMQP_PORT + 9))}"
    HMS_AMQP_USER="${HMS_AMQP_USER:-hms}"
    HMS_AMQP_PASSWORD="${HMS_AMQP_PASSWORD:-hms-local}"
    RMQ_DIR="$HMS_STACK_DIR/rabbitmq"
    RMQ_NODE="hms-act-${HMS_AMQP_PORT}@localhost"
    RMQ_DIST_PORT=$((HMS_AMQP_PORT + 1))
    RMQ_EPMD_PORT=$((HMS_AMQP_PORT + 2))
    RMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid"

    export HOME="$RMQ_DIR/home"
    export RABBITMQ_NODENAME="$RMQ_NODE"
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
    # A node that fails to boot writes its crash dump here, not into whatever folder started it.
    export ERL_CRASH_DUMP="$RMQ_DIR/log/erl_crash.dump"
    export RABBITMQ_PID_FILE="$RMQ_PID_FILE"
    export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf.absent"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$HMS_AMQP_PORT"
    export RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
    export RABBITMQ_CTL_DIST_PORT_MIN=$((HMS_AMQP_PORT + 10))
    export RABBITMQ_CTL_DIST_PORT_MAX=$((HMS_AMQP_PORT + 19))
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT="$RMQ_EPMD_PORT"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

# Runs the unwrapped rabbitmqctl against our node, in a subshell so the private HOME does not leak.
_rmq_ctl() {
    (
        _rmq_setup_env
        "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" "$@"
    )
}

rmq_install() {
    apt_ensure rabbitmq-server librabbitmq-dev
}

_rmq_write_config() {
    mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log" "$HOME"
    chmod 700 "$HOME"
    # Our own Erlang cookie, so rabbitmqctl talks to this node only and no other node's cookie is read.
    if [ ! -s "$HOME/.erlang.cookie" ]; then
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HOME/.erlang.cookie")
    fi
    chmod 400 "$HOME/.erlang.cookie"
    printf '[].\n' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    printf '[].\n' >"$RABBITMQ_ADVANCED_CONFIG_FILE"
    cat >"$RABBITMQ_CONFIG_FILE" <<EOF
# Generated by scripts/lib/rabbitmq.sh; rewritten on every start.
listeners.tcp.1 = 127.0.0.1:${HMS_AMQP_PORT}
listeners.ssl.1 = 127.0.0.1:${HMS_AMQPS_PORT}
ssl_options.cacertfile = $(_tls_dir)/ca.pem
ssl_options.certfile = $(_tls_dir)/server.pem
ssl_options.keyfile = $(_tls_dir)/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
max_message_size = ${RMQ_MAX_MESSAGE_SIZE}
log.console = false
log.file.level = info
EOF
}

rmq_up() {
    (
        _rmq_setup_env
        mkdir -p "$RMQ_DIR"
        if pid_alive "$RMQ_PID_FILE" && "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" status >/dev/null 2>&1; then
            log "rabbitmq already running (node $RMQ_NODE, port $HMS_AMQP_PORT)"
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$HMS_AMQPS_PORT") 2>/dev/null; then
                log "warning: no TLS listener on 127.0.0.1:$HMS_AMQPS_PORT (the node was started before TLS);" \
                    "restart it: scripts/stack down && scripts/stack up"
            fi
        else
            if pid_alive "$RMQ_PID_FILE"; then
                # A live pid that does not answer: an earlier start still booting, or a wedged node.
                log "rabbitmq pid $(cat "$RMQ_PID_FILE") does not answer yet; waiting for it"
            else
                rm -f "$RMQ_PID_FILE"
                _rmq_write_config
                log "starting rabbitmq (node $RMQ_NODE, 127.0.0.1:$HMS_AMQP_PORT, TLS :$HMS_AMQPS_PORT, data $RMQ_DIR)"
                # setsid: the node survives the shell that started it; its output goes to the log dir. Every
                # other inherited descriptor is closed first: a caller waiting for EOF on a pipe it gave us
                # (CI runners, Foundation.Process) would otherwise wait as long as the node runs.
                (
                    for fd in /proc/$BASHPID/fd/*; do
                        fd="${fd##*/}"
                        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec ${fd}>&-"
                    done
                    exec setsid "$RMQ_BIN_DIR/rabbitmq-server" >"$RMQ_DIR/log/startup.log" 2>&1 </dev/null
                ) &
            fi
            # `wait PIDFILE` blocks until the node wrote its pid file and booted (await_startup fails early).
            "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" wait --timeout 120 "$RMQ_PID_FILE" >/dev/null 2>&1 \
                || die "rabbitmq did not start; see $RMQ_DIR/log/"
        fi
        # The user exists with the expected password on every `up`; the default guest user is removed.
        if ! "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q list_users 2>/dev/null | grep -q "^${HMS_AMQP_USER}[[:space:]]"; then
            "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q add_user "$HMS_AMQP_USER" "$HMS_AMQP_PASSWORD" >/dev/null
        else
            "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q change_password "$HMS_AMQP_USER" "$HMS_AMQP_PASSWORD" >/dev/null
        fi
        "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q set_user_tags "$HMS_AMQP_USER" administrator >/dev/null
        "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q set_permissions -p / "$HMS_AMQP_USER" '.*' '.*' '.*' >/dev/null
        if "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q list_users 2>/dev/null | grep -q '^guest[[:space:]]'; then
            "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q delete_user guest >/dev/null
        fi
        _rmq_import_topology
        log "rabbitmq ready (pid $(cat "$RMQ_PID_FILE"))"
    )
}

# The shared topology and the least-privilege users (run inside rmq_up's environment).
_rmq_import_topology() {
    "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q import_definitions "$RMQ_DEPLOY_DIR/definitions.json" >/dev/null \
        || die "importing deploy/rabbitmq/definitions.json failed; see $RMQ_DIR/log/"
    # An import keeps a queue that exists already, whatever its arguments: hms-act's queues declared as
    # classic by an older demo would make `hms-act serve` fail with 406 PRECONDITION_FAILED.
    local stale
    stale="$("$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q list_queues --no-table-headers name type 2>/dev/null \
        | awk '$1 ~ /^hms-act\./ && $2 != "quorum" { printf "%s ", $1 }')"
    if [ -n "$stale" ]; then
        log "warning: ${stale}exist(s) as classic queues, not as deploy/rabbitmq/definitions.json declares them (quorum);" \
            "hms-act will refuse them: scripts/stack down && rm -rf $RMQ_DIR && scripts/stack up"
    fi
    # The demo worker consumes demo-worker and every agent's own queue (agents/*.json "queue").
    local agent_queues=() queue
    while IFS= read -r queue; do
        [ -n "$queue" ] && agent_queues+=(--queue "$queue")
    done < <(sed -n 's/.*"queue"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$RMQ_DEPLOY_DIR"/../../agents/*.json 2>/dev/null | sort -u)
    HMS_PASSWORD_HMS_ACT="$RMQ_SERVICE_PASSWORD" \
        HMS_PASSWORD_HMS_DEMO_WORKER="$RMQ_WORKER_PASSWORD" \
        HMS_PASSWORD_HMS_PUBLISHER="$RMQ_PUBLISHER_PASSWORD" \
        RABBITMQCTL="$RMQ_BIN_DIR/rabbitmqctl -n $RMQ_NODE" \
        HMS_RABBITMQ_VHOST=/ \
        "$RMQ_DEPLOY_DIR/create-users.sh" \
        service "$RMQ_SERVICE_USER" \
        -- worker "$RMQ_WORKER_USER" --queue demo-worker "${agent_queues[@]}" \
        -- publisher "$RMQ_PUBLISHER_USER" \
        || die "creating the least-privilege users (deploy/rabbitmq/create-users.sh) failed"
}

rmq_down() {
    (
        _rmq_setup_env
        if pid_alive "$RMQ_PID_FILE"; then
            local pid
            pid="$(cat "$RMQ_PID_FILE")"
            log "stopping rabbitmq (node $RMQ_NODE, pid $pid)"
            # A stopped (SIGSTOP) node cannot answer rabbitmqctl; wake it first (harmless otherwise).
            kill -CONT "$pid" 2>/dev/null || true
            # rabbitmqctl waits for the pid to exit; bound it, then fall back to signals.
            timeout 60 "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" stop "$RMQ_PID_FILE" >/dev/null 2>&1 \
                || kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + 30))
            while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        else
            log "rabbitmq not running (node $RMQ_NODE)"
        fi
        rm -f "$RMQ_PID_FILE"
        # Our private epmd outlives the node; only the one on our own port is asked to stop.
        epmd -port "$RMQ_EPMD_PORT" -kill >/dev/null 2>&1 || true
    )
}

rmq_status() {
    (
        _rmq_setup_env
        if pid_alive "$RMQ_PID_FILE" && "$RMQ_BIN_DIR/rabbitmqctl" -n "$RMQ_NODE" -q status >/dev/null 2>&1; then
            echo "rabbitmq: running (node $RMQ_NODE, pid $(cat "$RMQ_PID_FILE"), 127.0.0.1:$HMS_AMQP_PORT, TLS :$HMS_AMQPS_PORT)"
        else
            echo "rabbitmq: stopped (node $RMQ_NODE)"
            return 1
        fi
    )
}

rmq_env() {
    (
        _rmq_setup_env
        echo "export AMQP_URL=amqp://${HMS_AMQP_USER}:${HMS_AMQP_PASSWORD}@127.0.0.1:${HMS_AMQP_PORT}/%2f"
        echo "export HMS_ACT_AMQP_URL=amqp://${RMQ_SERVICE_USER}:${RMQ_SERVICE_PASSWORD}@127.0.0.1:${HMS_AMQP_PORT}/%2f"
        echo "export HMS_WORKER_AMQP_URL=amqp://${RMQ_WORKER_USER}:${RMQ_WORKER_PASSWORD}@127.0.0.1:${HMS_AMQP_PORT}/%2f"
        echo "export HMS_PUBLISHER_AMQP_URL=amqp://${RMQ_PUBLISHER_USER}:${RMQ_PUBLISHER_PASSWORD}@127.0.0.1:${HMS_AMQP_PORT}/%2f"
        echo "export HMS_AMQP_PORT=${HMS_AMQP_PORT}"
        local ca
        ca="$(cd "$(_tls_dir)" && pwd -P)/ca.pem"
        echo "export HMS_AMQPS_PORT=${HMS_AMQPS_PORT}"
        echo "export AMQPS_URL='amqps://${HMS_AMQP_USER}:${HMS_AMQP_PASSWORD}@localhost:${HMS_AMQPS_PORT}/%2f?cacertfile=${ca}'"
        echo "export HMS_ACT_AMQPS_URL='amqps://${RMQ_SERVICE_USER}:${RMQ_SERVICE_PASSWORD}@localhost:${HMS_AMQPS_PORT}/%2f?cacertfile=${ca}'"
        echo "export HMS_AMQP_MAX_MESSAGE_SIZE=${RMQ_MAX_MESSAGE_SIZE}"
    )
}
