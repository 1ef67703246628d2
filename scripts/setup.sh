#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need, idempotently: each step checks first and
# skips what is already present. The steps are the ones verified in ../shared/ENVIRONMENT.md.
#
#   scripts/setup.sh            # everything
#   SETUP_SKIP_APT=1 scripts/setup.sh   # only the Rust-side tools (no root needed)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# --- Debian packages: Chromium + ChromeDriver (browser tests) ---
# (wasm-opt comes from npm's binaryen 132, below: Debian 12's binaryen 108 mangles the externref table
# that wasm-bindgen 0.2.130 emits, and the page then fails with "WebAssembly.Table.set(): Argument 1 is
# invalid for table".)
apt_updated=""
apt_update() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ -z "${SETUP_SKIP_APT:-}" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt_update
    apt_install "${missing[@]}"
  fi

  # --- Mesa lavapipe (software Vulkan) from bookworm-backports: Debian 12's own has no shaderFloat16 ---
  mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  case "$mesa_version" in
    2[5-9].*|[3-9][0-9].*) ;;
    *)
      bp=/etc/apt/sources.list.d/bookworm-backports.sources
      if [ ! -f "$bp" ]; then
        log "enabling bookworm-backports in $bp"
        # The first stanza of debian.sources, with the suite swapped.
        awk 'BEGIN{RS="";ORS="\n\n"} NR==1{print; exit}' /etc/apt/sources.list.d/debian.sources \
          | sed 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$bp" >/dev/null
        apt_updated=""
      fi
      log "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
      apt_update
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
      ;;
  esac
fi

# --- Rust: the wasm32 target, wasm-pack, wasm-bindgen-cli at exactly Cargo.lock's version ---
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v wasm-pack >/dev/null 2>&1; then
  log "cargo install wasm-pack (about 2 minutes)"
  cargo install wasm-pack --locked --quiet
fi

wb_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if [ -z "$wb_version" ]; then
  echo "[setup] could not read the wasm-bindgen version from Cargo.lock" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  # Not --locked: one of its locked dependencies is missing from the registry (ENVIRONMENT.md).
  log "cargo install wasm-bindgen-cli $wb_version (about 4 minutes)"
  cargo install wasm-bindgen-cli --version "$wb_version" --force --quiet
fi

# --- cargo-fuzz, for the fuzz smoke run (scripts/fuzz.sh; stable Rust, no sanitizer) ---
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "cargo install cargo-fuzz (about 1 minute)"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

# --- npm packages: playwright-core (drives Debian's chromium; never downloads a browser), binaryen
# (wasm-opt for wasm-pack; scripts put node_modules/.bin first on PATH), vite and typescript (the
# example app), onnxruntime-web (the browser benchmark's baseline) ---
if [ -f package-lock.json ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "npm ci"
  npm ci --no-audit --no-fund --silent
fi

log "ready"
