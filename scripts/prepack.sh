#!/usr/bin/env bash
# npm's prepack hook (`npm pack`, `npm publish`): compiles src into dist/src, the package's
# JavaScript and declarations (tsconfig.build.json), so a clean clone packs a complete package.
# Without node_modules it first installs the dev tools, without running install scripts (the
# addon is not part of the package) and for real even under `npm pack --dry-run`, which would
# otherwise pass its dry run on to this npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/tsc ]; then
  npm ci --ignore-scripts --include=dev --dry-run=false --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/tsc -p tsconfig.build.json
