#!/bin/sh
# web_js: node:test checks of the web UI's pure JavaScript helpers
# (web/test/*.test.mjs): field placement of API validation messages,
# formatting, merging of history samples. SKIP (77) without node.
cd "$(dirname "$0")/../.." || exit 1
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP node is missing (scripts/install-deps installs nodejs)"
  exit 77
fi
exec node --test web/test/
