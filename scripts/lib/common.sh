# Helpers shared by the stack scripts. Sourced, not run.

log() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs apt-get install for the given packages when any of them is missing. `apt-get update` runs once per
# stack directory (a stamp file remembers it), because a fresh machine's package lists are empty.
apt_ensure() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing packages ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
        sudo="sudo -n"
    fi
    log "installing ${missing[*]} (apt)"
    if [ ! -f "$HMS_STACK_DIR/.apt-updated" ]; then
        $sudo apt-get update -qq >&2 || die "apt-get update failed"
        mkdir -p "$HMS_STACK_DIR" && touch "$HMS_STACK_DIR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

# True when the pid in the file names a live process.
pid_alive() {
    local file="$1"
    [ -f "$file" ] || return 1
    local pid
    pid="$(cat "$file" 2>/dev/null)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Waits until `command…` succeeds, up to `seconds`.
wait_for() {
    local seconds="$1"
    shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}
