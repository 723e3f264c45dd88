#!/usr/bin/env bash
# Installs the YAML language server that tests/test_editor_schema.py runs, exactly as package-lock.json pins it.
# Idempotent and quiet: does nothing when node_modules already holds this lock file's install.
set -euo pipefail
cd "$(dirname "$0")"
if [ -d node_modules ] && cmp -s package-lock.json node_modules/.installed-lock; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json node_modules/.installed-lock
