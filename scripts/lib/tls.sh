# A throwaway certificate authority for the local stack's TLS listeners. Sourced by scripts/stack, not run.
#
#   tls_install   apt-get install openssl when missing
#   tls_ensure    make the CA and the server certificate under $HMS_STACK_DIR/tls when missing or expiring
#   tls_env       print the CA files as `export` lines
#
# Files (all under $HMS_STACK_DIR/tls, private keys mode 0600):
#   ca.pem, ca.key                the local CA; clients trust ca.pem (HMS_TLS_CA_FILE)
#   server.pem, server.key        the certificate both servers present: SAN DNS:localhost and IP:127.0.0.1
#   client.pem, client.key        a client certificate the CA signed (CN hms-act), for mutual TLS
#   untrusted-ca.pem              a second CA that signed nothing the servers present: a client that trusts
#                                 only it must refuse them (HMS_TLS_UNTRUSTED_CA_FILE, for the tests)
#
# The keys are throwaways for loopback-only servers; never use them anywhere else. They are made again when
# they expire within a day, and never reused across stack folders.

_tls_dir() { printf '%s/tls' "$HMS_STACK_DIR"; }

tls_install() {
    apt_ensure openssl
}

# True when `file` is a certificate valid for at least another day.
_tls_fresh() {
    [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

# Signs a new key's certificate with the local CA: _tls_issue NAME SUBJECT EXTENSIONS.
_tls_issue() {
    local dir name subject extensions
    dir="$(_tls_dir)"
    name="$1"
    subject="$2"
    extensions="$3"
    (umask 077 && openssl genrsa -out "$dir/$name.key" 2048 2>/dev/null) || die "openssl genrsa ($name) failed"
    openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null \
        || die "openssl req ($name) failed"
    printf '%s\n' "$extensions" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 30 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null \
        || die "openssl x509 -req ($name) failed"
    rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# A self-signed CA: _tls_make_ca NAME COMMON_NAME.
_tls_make_ca() {
    local dir
    dir="$(_tls_dir)"
    (umask 077 && openssl genrsa -out "$dir/$1.key" 2048 2>/dev/null) || die "openssl genrsa ($1) failed"
    openssl req -x509 -new -key "$dir/$1.key" -sha256 -days 30 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/$1.pem" 2>/dev/null || die "openssl req -x509 ($1) failed"
}

tls_ensure() {
    local dir
    dir="$(_tls_dir)"
    mkdir -p "$dir"
    chmod 755 "$dir"
    if _tls_fresh "$dir/ca.pem" && _tls_fresh "$dir/server.pem" && _tls_fresh "$dir/client.pem" \
        && _tls_fresh "$dir/untrusted-ca.pem"; then
        return 0
    fi
    log "making a throwaway CA and certificates in $dir (openssl)"
    _tls_make_ca ca "hms-act local stack CA (throwaway)"
    _tls_issue server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
    _tls_issue client "/CN=hms-act" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    _tls_make_ca untrusted-ca "an unrelated CA (throwaway)"
    rm -f "$dir/untrusted-ca.key" "$dir/ca.srl"
    chmod 644 "$dir"/*.pem
}

tls_env() {
    local dir
    dir="$(cd "$(_tls_dir)" 2>/dev/null && pwd -P)" || return 0
    cat <<EOF
export HMS_TLS_CA_FILE=$dir/ca.pem
export HMS_TLS_UNTRUSTED_CA_FILE=$dir/untrusted-ca.pem
export HMS_TLS_CLIENT_CERT_FILE=$dir/client.pem
export HMS_TLS_CLIENT_KEY_FILE=$dir/client.key
EOF
}
