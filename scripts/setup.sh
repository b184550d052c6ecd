#!/usr/bin/env bash
# Makes this checkout ready, idempotently: the machine part (scripts/setup-machine.sh, the same
# script `npx mpbus setup` runs for users of the package, plus nats-server for the cluster
# tests), then what only the repository needs: npm dependencies, the native addon and the
# TypeScript build. Fast when all is already done. Without root it changes nothing and prints
# the commands a person must run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-machine.sh nats-server openssl dpdk-doc tmux clang-format   # nats-server: the cluster tests (docs/cluster.md); openssl: test/cluster.test.ts makes a CA and a certificate for its TLS server; dpdk-doc: the sources of DPDK's examples, built by test/c-examples.test.ts; tmux: test/cli-live.test.ts runs `mpbus top` in a terminal; clang-format: test/unit/style.test.ts checks native/
say() { [ -n "${MPBUS_SETUP_QUIET:-}" ] || echo "mpbus setup: $*"; }

# npm dependencies: install when missing or when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# The linter's own dependencies (tools/lint: ESLint with typescript-eslint, which needs
# TypeScript 6's JavaScript API; the project compiles with TypeScript 7).
if [ ! -f tools/lint/node_modules/.package-lock.json ] || [ tools/lint/package-lock.json -nt tools/lint/node_modules/.package-lock.json ]; then
  say "installing the linter (tools/lint)"
  npm ci --prefix tools/lint --no-audit --no-fund --loglevel=error >/dev/null
fi

node scripts/build-native.mjs --if-stale
# TypeScript: tsc is quick when nothing changed (incremental build info).
node_modules/.bin/tsc -p tsconfig.json --incremental
