#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, rustdoc, every test of every crate.
#
# PostgreSQL must be reachable on 127.0.0.1:5432 with trust authentication for the
# `postgres` user, so that the PostgreSQL tests of hanko-store and hanko-server (log_*)
# run: they fail, never skip, without it. When `pg_isready` says it is not, this script
# installs Debian's postgresql, allows trust logins from 127.0.0.1/::1 and starts the
# cluster (as root or through sudo). HANKO_SKIP_POSTGRES is refused here.
#
# It first runs ops/dev-setup.sh (idempotent: it installs only what is missing), so it
# works first on a fresh machine, before or without the dev server's command.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
./ops/dev-setup.sh </dev/null

# Each line carries the seconds since the start, so a CI log shows where its time went.
log() { printf 'test.sh [%4d s]: %s\n' "$(( $(date +%s) - started ))" "$*" >&2; }
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
as_root() { "${SUDO[@]}" "$@"; }
export PATH="$HOME/.cargo/bin:$PATH"

pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
    if ! command -v pg_isready >/dev/null 2>&1; then
        # A server may be there already (a CI service): ask it before installing one.
        log "installing the PostgreSQL client tools from Debian"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql-client >/dev/null
    fi
    if pg_ready; then
        log "PostgreSQL is reachable on 127.0.0.1:5432"
        return
    fi
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        log "installing PostgreSQL from Debian"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql postgresql-client >/dev/null
    fi
    local version
    version=$(pg_lsclusters --no-header | awk 'NR==1 {print $1}')
    if [ -z "$version" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
        log "creating PostgreSQL $version cluster 'main'"
        as_root pg_createcluster "$version" main >/dev/null
    fi
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! as_root grep -q '^# hanko-tests: trust' "$hba"; then
        log "allowing trust logins from 127.0.0.1 and ::1 (test machines only)"
        as_root sh -c "{ printf '%s\n' '# hanko-tests: trust' \
            'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'; cat '$hba'; } \
            > '$hba.new' && mv '$hba.new' '$hba'"
        as_root chown postgres:postgres "$hba"
    fi
    as_root pg_ctlcluster "$version" main start 2>/dev/null ||
        as_root pg_ctlcluster "$version" main reload
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || { log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
    log "PostgreSQL $version is up"
}

if [ -n "${HANKO_SKIP_POSTGRES:-}" ]; then
    log "HANKO_SKIP_POSTGRES is set: the full suite runs the PostgreSQL tests; unset it"
    exit 1
fi
ensure_postgres
if [ -z "${HANKO_TEST_POSTGRES_URL:-}" ]; then
    if ! psql -h 127.0.0.1 -U postgres -tAc 'SELECT 1' </dev/null >/dev/null 2>&1; then
        log "PostgreSQL on 127.0.0.1:5432 does not let user postgres in without a password:"
        log "allow trust for 127.0.0.1 in pg_hba.conf (test machines only), or set"
        log "HANKO_TEST_POSTGRES_URL=postgres://user:password@127.0.0.1:5432/postgres"
        exit 1
    fi
    # The tests create (and drop) a database each.
    if [ "$(psql -h 127.0.0.1 -U postgres -tAc \
        'SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user')" != t ]; then
        log "user postgres on 127.0.0.1:5432 may not CREATE DATABASE; the tests need to"
        exit 1
    fi
    # The conventional test database (user postgres, db test).
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" |
        grep -q 1 || psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE test'
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${CI:-}" = "true" ]; then
    # CI builds once from scratch: incremental artifacts only cost time and disk.
    export CARGO_INCREMENTAL=0
fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo doc (no broken intra-doc links, no rustdoc warnings)"
RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --workspace --no-deps --quiet
log "cargo test: building the tests"
cargo test --workspace --no-run --quiet
log "cargo test: running them"
cargo test --workspace --no-fail-fast
log "systemd unit (ops/hanko.service)"
./ops/check-unit.sh

# The request decoder under libFuzzer for a bounded time (HANKO_FUZZ_SECS, default 60;
# 0 skips). Stable toolchain: cargo-fuzz's nightly flags come from RUSTC_BOOTSTRAP=1.
fuzz_secs="${HANKO_FUZZ_SECS:-60}"
if [ "$fuzz_secs" != 0 ]; then
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install --locked --quiet cargo-fuzz
    fi
    log "fuzz smoke: ${fuzz_secs} s per target"
    ./fuzz/smoke.sh "$fuzz_secs"
fi
log "all tests passed"
