#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one entry point a newcomer needs on a fresh Debian 12 machine.
#
#   ./vellum.sh serve    install what is missing, build (release), start the server
#                        on 127.0.0.1:2113 with its data in ./vellum-data
#   ./vellum.sh test     install what is missing, build, run the whole test suite
#   ./vellum.sh bench    run the benchmark matrix and the peers, write docs/benchmarks.md
#   ./vellum.sh deps     only install the Debian packages
#   ./vellum.sh build [preset]   only build (debug|release|asan|tsan|fuzz)
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(cmake ninja-build g++ ccache pkg-config python3 git
  librocksdb-dev libexpected-dev libssl-dev libfmt-dev libspdlog-dev libcli11-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  libboost1.81-dev libtomlplusplus-dev
  clang-14 libclang-rt-14-dev libfuzzer-14-dev
  python3-websockets openssl curl wrk
  postgresql libpqxx-dev  # the PostgreSQL projection sink and its tests (tests/pg/)
  chromium fonts-liberation)  # the browser tests of the TypeScript client and the demo (clients/js)
BENCH_PACKAGES=(postgresql redis-server sqlite3 fio libpq-dev libsqlite3-dev libhiredis-dev wrk)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

install_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# The TypeScript client (clients/js) needs Node.js >= 20 with npm. Machines of
# this project ship Node 20 (its package provides npm); on a plain Debian 12,
# Debian's nodejs (18) and npm are installed, and the JS stage says it is too old.
install_node() {
  if ! command -v node >/dev/null; then install_packages nodejs; fi
  if ! command -v npm >/dev/null; then install_packages npm; fi
}

# Builds the trip-planner demo that `serve` shows at /demo/ (clients/js/demo).
build_demo() {
  install_node
  log "building the demo (clients/js/demo)"
  (cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build:demo)
}

build() {
  local preset="${1:-release}"
  log "building ($preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
}

cmd_serve() {
  install_packages "${BUILD_PACKAGES[@]}"
  build release
  build_demo
  local data="${VELLUM_DATA:-$PWD/vellum-data}"
  local listen="${VELLUM_LISTEN:-127.0.0.1:2113}"
  log "serving $data on http://$listen  (Ctrl-C stops; docs/api/http.md has the API)"
  log "the trip-planner demo: http://$listen/demo/?room=tokyo"
  # Extra arguments go to `vellum serve` (see build/release/src/vellum serve --help).
  exec build/release/src/vellum --data "$data" serve --listen "$listen" \
    --demo-dir "$PWD/clients/js/demo/dist" "$@"
}

cmd_test() {
  install_packages "${BUILD_PACKAGES[@]}"
  install_node
  exec ./tools/run_tests.sh "$@"
}

cmd_bench() {
  install_packages "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"
  build release
  exec ./bench/run.sh "$@"
}

case "${1:-}" in
  serve) shift; cmd_serve "$@" ;;
  test) shift; cmd_test "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  deps) install_packages "${BUILD_PACKAGES[@]}" ;;
  build) shift; install_packages "${BUILD_PACKAGES[@]}"; build "${1:-release}" ;;
  *)
    sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 1
    ;;
esac
