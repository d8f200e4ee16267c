#!/usr/bin/env bash
# Installs what Hanko's build, dev server and test suite need on Debian (12+), and only
# what is missing; a second run changes nothing. Runs as root or through sudo.
#
#   Debian packages: softhsm2, opensc (pkcs11-tool), openssl, libssl-dev (the verifier
#                    of hanko-pki links OpenSSL 3), pkg-config,
#                    build-essential, curl, ca-certificates, python3, python3-pip,
#                    poppler-utils (pdfsig, pdftoppm, pdftotext, pdffonts) and qpdf (PAdES
#                    and visible seal tests), fonts-ipaexfont-gothic (the seal text's font),
#                    chromium and chromium-driver (the verification page's browser tests,
#                    driven headless over WebDriver; --no-install-recommends keeps it small),
#                    default-jdk-headless, libbcprov-java, libbcpkix-java, libbcutil-java
#                    (Bouncy Castle's RFC 4998 checker, the third-party verifier of
#                    hanko-anchor's evidence records), faketime (the evidence renewal
#                    tests verify records at a date past a TSA certificate's expiry)
#   Python:          rfc3161-client, cryptography, pyasn1 (third-party verifiers in tests);
#                    pyhanko, pyhanko-certvalidator (the third-party CSC client of the CSC
#                    interop test and the PDF signature validator of the PAdES tests)
#   Rust:            rustup with a stable toolchain (+ rustfmt, clippy) when no cargo >= 1.88
#                    is on PATH; its binaries are linked into /usr/local/bin so that the
#                    calling shell finds `cargo` right away.
#
# PostgreSQL (for the store tests) is set up by ops/test.sh, which needs it; the dev
# server does not. Non-interactive: safe for CI (CI=true, no stdin).
set -euo pipefail

MIN_RUST_MINOR=88   # workspace rust-version = 1.88 (edition 2024)

log() { printf 'dev-setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    log "not root and no sudo: install the packages listed at the top of $0 by hand"
    exit 1
fi
as_root() { "${SUDO[@]}" "$@"; }

# --- Debian packages --------------------------------------------------------------------
packages=(softhsm2 opensc openssl libssl-dev pkg-config build-essential curl ca-certificates
          python3 python3-pip poppler-utils qpdf fonts-ipaexfont-gothic
          chromium chromium-driver
          default-jdk-headless libbcprov-java libbcpkix-java libbcutil-java
          faketime)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
    log "SoftHSM module /usr/lib/softhsm/libsofthsm2.so not found after installing softhsm2"
    exit 1
fi

# --- Python verifiers -------------------------------------------------------------------
# Each entry: an import check, then the pip packages that satisfy it.
python_sets=(
    "import rfc3161_client, cryptography, pyasn1|rfc3161-client cryptography pyasn1"
    "import pyhanko.sign.signers.csc_signer, pyhanko_certvalidator, aiohttp|pyhanko>=0.38,<0.39 pyhanko-certvalidator aiohttp"
)
pip_install() {
    local pip_args=(install --quiet --disable-pip-version-check "$@")
    # Debian marks its Python "externally managed" (PEP 668); these are test tools.
    if python3 -m pip install --help 2>/dev/null | grep -q -- '--break-system-packages'; then
        pip_args+=(--break-system-packages)
    fi
    if [ -w "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" ]; then
        python3 -m pip "${pip_args[@]}"
    else
        as_root python3 -m pip "${pip_args[@]}"
    fi
}
for entry in "${python_sets[@]}"; do
    check=${entry%%|*}
    read -r -a pkgs <<<"${entry#*|}"
    if python3 -c "$check" 2>/dev/null; then
        log "Python packages present: ${pkgs[*]}"
    else
        log "installing Python packages: ${pkgs[*]}"
        pip_install "${pkgs[@]}"
        python3 -c "$check"
    fi
done

# --- Rust -------------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
rust_ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    local minor
    minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+).*/\1/')
    [ "$minor" -ge "$MIN_RUST_MINOR" ] 2>/dev/null
}
if rust_ok; then
    log "$(cargo --version) present"
else
    if ! command -v rustup >/dev/null 2>&1; then
        log "installing rustup and the stable Rust toolchain"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --quiet --profile minimal --default-toolchain stable \
                --component rustfmt --component clippy
    else
        rustup toolchain install stable --profile minimal --component rustfmt --component clippy
        rustup default stable
    fi
    # Make the toolchain visible to the shell that called us (`... && cargo run`).
    for bin in cargo rustc rustup rustfmt cargo-fmt cargo-clippy clippy-driver rustdoc; do
        if [ -e "$HOME/.cargo/bin/$bin" ]; then
            as_root ln -sf "$HOME/.cargo/bin/$bin" "/usr/local/bin/$bin"
        fi
    done
    rust_ok || { log "cargo >= 1.$MIN_RUST_MINOR still not found"; exit 1; }
fi
if command -v rustup >/dev/null 2>&1; then
    # rustfmt and clippy are needed by ops/test.sh; a no-op when installed.
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

log "ready. Start a dev server:  cargo run --release --bin hanko -- serve --dev"
