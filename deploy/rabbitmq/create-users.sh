#!/usr/bin/env bash
# Creates (or updates) least-privilege RabbitMQ users for hms-act, its workers, governance listeners and
# event publishers, with passwords taken from the environment: never on a command line, never in git.
#
#   create-users.sh [--print] SPEC [-- SPEC]...
#
#   service   USER                                    hms-act itself (declares and consumes its queues,
#                                                     publishes tasks, governance events, dead letters)
#   publisher USER [--event TYPE]...                  a trigger emitter: publishes on hms.events only
#                                                     (--event: only these event types)
#   worker    USER --queue Q... [--label LABEL]...    a worker: its own queues, tasks in, results out
#                                                     (--label: only task.LABEL in, result.LABEL out)
#   listener  USER --queue Q... [--key KEY]...        reads hms.governance into its own queues
#                                                     (--key: only these binding keys)
#
# Each user's password comes from HMS_PASSWORD_<USER> (upper case, other characters than letters and digits
# as _), e.g. HMS_PASSWORD_HMS_ACT for hms-act; --password-env VAR names another variable. Users, their
# permissions and topic permissions are imported in one `rabbitmqctl import_definitions` from standard
# input (a salted SHA-256 hash, RabbitMQ's default scheme); running it again updates them. --print writes
# that JSON to standard output instead.
#
# Names follow hms-act's own settings and defaults: HMS_EXCHANGE_{EVENTS,TASKS,RESULTS,GOVERNANCE,DEAD},
# HMS_QUEUE_{TRIGGERS,RESULTS,DEAD}; the virtual host is HMS_RABBITMQ_VHOST (default /). RABBITMQCTL is the
# command to run (default rabbitmqctl; split on spaces, e.g. "rabbitmqctl -n rabbit@mq-0").
# See deploy/rabbitmq/README.md for the permission model.
set -euo pipefail

die() { printf 'create-users.sh: %s\n' "$*" >&2; exit 2; }

VHOST="${HMS_RABBITMQ_VHOST:-/}"
E_EVENTS="${HMS_EXCHANGE_EVENTS:-hms.events}"
E_TASKS="${HMS_EXCHANGE_TASKS:-hms.tasks}"
E_RESULTS="${HMS_EXCHANGE_RESULTS:-hms.results}"
E_GOVERNANCE="${HMS_EXCHANGE_GOVERNANCE:-hms.governance}"
E_DEAD="${HMS_EXCHANGE_DEAD:-hms.dead}"
Q_TRIGGERS="${HMS_QUEUE_TRIGGERS:-hms-act.triggers}"
Q_RESULTS="${HMS_QUEUE_RESULTS:-hms-act.results}"
Q_DEAD="${HMS_QUEUE_DEAD:-hms-act.dead}"

# Names end up in regular expressions and JSON: keep them to what the project uses.
check_name() {
    [[ "$2" =~ ^[A-Za-z0-9._-]+$ ]] || die "$1 '$2' may only contain letters, digits, '.', '_' and '-'"
}
for pair in "exchange:$E_EVENTS" "exchange:$E_TASKS" "exchange:$E_RESULTS" "exchange:$E_GOVERNANCE" \
    "exchange:$E_DEAD" "queue:$Q_TRIGGERS" "queue:$Q_RESULTS" "queue:$Q_DEAD"; do
    check_name "${pair%%:*}" "${pair#*:}"
done
[[ "$VHOST" =~ ^[A-Za-z0-9/._-]+$ ]] || die "HMS_RABBITMQ_VHOST '$VHOST' may only contain letters, digits, '/', '.', '_' and '-'"

# A name as a regular expression matching exactly it (only '.' is special among the allowed characters).
re() { printf '%s' "${1//./\\.}"; }
# ^(a|b|c)$ from names; ^$ (nothing) from none.
exactly() {
    local out="" name
    for name in "$@"; do out+="${out:+|}$(re "$name")"; done
    if [ -z "$out" ]; then printf '^$'; else printf '^(%s)$' "$out"; fi
}
# A regular expression as a JSON string (backslashes doubled; names have no quotes or control characters).
json() { local s="${1//\\/\\\\}"; printf '"%s"' "$s"; }

# RabbitMQ's rabbit_password_hashing_sha256: base64(salt ‖ SHA-256(salt ‖ UTF-8 password)), 4-byte salt.
password_hash() {
    local password="$1" salt
    salt="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n' | sed 's/../\\x&/g')"
    # shellcheck disable=SC2059  # the salt is \xNN escapes: a format on purpose
    { printf "$salt"; { printf "$salt"; printf '%s' "$password"; } | openssl dgst -sha256 -binary; } | base64 | tr -d '\n'
}

command -v openssl >/dev/null || die "openssl is needed to hash the passwords (apt-get install openssl)"

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h | --help | help) usage; exit 0 ;; esac
print=false
if [ "${1:-}" = "--print" ]; then print=true; shift; fi
[ $# -gt 0 ] || { usage >&2; exit 2; }

users=() permissions=() topics=()

add_user() {  # kind user password-env configure write read [exchange topic-write topic-read]...
    local kind="$1" user="$2" variable="$3" configure="$4" write="$5" read="$6"
    shift 6
    local password="${!variable:-}"
    [ -n "$password" ] || die "$kind $user: set its password in \$$variable"
    users+=("{\"name\": $(json "$user"), \"password_hash\": $(json "$(password_hash "$password")"), \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": []}")
    permissions+=("{\"user\": $(json "$user"), \"vhost\": $(json "$VHOST"), \"configure\": $(json "$configure"), \"write\": $(json "$write"), \"read\": $(json "$read")}")
    while [ $# -gt 0 ]; do
        topics+=("{\"user\": $(json "$user"), \"vhost\": $(json "$VHOST"), \"exchange\": $(json "$1"), \"write\": $(json "$2"), \"read\": $(json "$3")}")
        shift 3
    done
}

# Topic permissions restrict routing keys (publish: write) and binding keys (queue.bind: read) on a topic
# exchange. Every exchange a user may touch gets one, `.*` when unrestricted, so that running this again
# without --label/--event/--key replaces an earlier restriction instead of keeping it.
keys() {  # prefix names... → ^(prefix\.a|prefix\.b)$, or .* without names
    local prefix="$1"
    shift
    [ $# -gt 0 ] || { printf '.*'; return; }
    local out="" name
    for name in "$@"; do out+="${out:+|}${prefix:+$(re "$prefix")\\.}$(re "$name")"; done
    printf '^(%s)$' "$out"
}

parse_spec() {
    local kind="${1:-}" user="${2:-}"
    [ -n "$kind" ] && [ -n "$user" ] || die "a SPEC is KIND USER [options] (see --help)"
    check_name user "$user"
    shift 2
    local variable queues=() extras=()
    variable="HMS_PASSWORD_$(printf '%s' "$user" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9' '_')"
    while [ $# -gt 0 ]; do
        case "$1" in
            --password-env) variable="${2:?--password-env needs a variable name}"; shift 2 ;;
            --queue) check_name queue "${2:?--queue needs a name}"; queues+=("$2"); shift 2 ;;
            --label | --event | --key)
                [ -n "${2:-}" ] || die "$1 needs a value"
                [[ "$2" =~ ^[A-Za-z0-9._-]+$ ]] || die "$1 '$2': letters, digits, '.', '_' and '-' only (no wildcards)"
                case "$kind:$1" in
                    worker:--label | publisher:--event | listener:--key) ;;
                    *) die "$kind does not take $1" ;;
                esac
                extras+=("$2"); shift 2 ;;
            *) die "unknown option '$1' for $kind $user" ;;
        esac
    done
    case "$kind" in
        service)
            [ ${#queues[@]} -eq 0 ] || die "service takes no --queue: its queues are HMS_QUEUE_*"
            # configure: declare its exchanges and queues. write: publish tasks (also to agents' own queues
            # through the default exchange), governance events and dead letters; bind its queues (queue.bind
            # needs write on the queue); declare queues dead-lettering to hms.dead (write on the DLX).
            # read: consume its two queues; bind from events, results and dead (read on the source exchange).
            add_user service "$user" "$variable" \
                "$(exactly "$E_EVENTS" "$E_TASKS" "$E_RESULTS" "$E_GOVERNANCE" "$E_DEAD" "$Q_TRIGGERS" "$Q_RESULTS" "$Q_DEAD")" \
                "$(exactly "$E_TASKS" "$E_GOVERNANCE" "$E_DEAD" amq.default "$Q_TRIGGERS" "$Q_RESULTS" "$Q_DEAD")" \
                "$(exactly "$E_EVENTS" "$E_RESULTS" "$E_DEAD" "$Q_TRIGGERS" "$Q_RESULTS")"
            ;;
        publisher)
            [ ${#queues[@]} -eq 0 ] || die "a publisher has no queues"
            add_user publisher "$user" "$variable" '^$' "$(exactly "$E_EVENTS")" '^$' \
                "$E_EVENTS" "$(keys "" "${extras[@]}")" '^$'
            ;;
        worker)
            [ ${#queues[@]} -gt 0 ] || die "worker $user: name its queues with --queue"
            add_user worker "$user" "$variable" \
                "$(exactly "${queues[@]}")" "$(exactly "${queues[@]}" "$E_RESULTS")" "$(exactly "${queues[@]}" "$E_TASKS")" \
                "$E_TASKS" '^$' "$(keys task "${extras[@]}")" \
                "$E_RESULTS" "$(keys result "${extras[@]}")" '^$'
            ;;
        listener)
            [ ${#queues[@]} -gt 0 ] || die "listener $user: name its queues with --queue"
            add_user listener "$user" "$variable" \
                "$(exactly "${queues[@]}")" "$(exactly "${queues[@]}")" "$(exactly "${queues[@]}" "$E_GOVERNANCE")" \
                "$E_GOVERNANCE" '^$' "$(keys "" "${extras[@]}")"
            ;;
        *) die "unknown kind '$kind' (service, publisher, worker, listener)" ;;
    esac
}

spec=()
for arg in "$@" --; do
    if [ "$arg" = "--" ]; then
        [ ${#spec[@]} -eq 0 ] || parse_spec "${spec[@]}"
        spec=()
    else
        spec+=("$arg")
    fi
done

join() { local IFS=','; printf '%s' "$*"; }
definitions="{\"users\": [$(join "${users[@]}")], \"permissions\": [$(join "${permissions[@]}")], \"topic_permissions\": [$(join "${topics[@]}")]}"

if $print; then
    printf '%s\n' "$definitions"
else
    # shellcheck disable=SC2086  # RABBITMQCTL is a command with options, split on purpose
    printf '%s\n' "$definitions" | ${RABBITMQCTL:-rabbitmqctl} -q import_definitions >/dev/null
    printf 'create-users.sh: imported %d user(s) into vhost %s\n' "${#users[@]}" "$VHOST" >&2
fi
