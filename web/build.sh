#!/bin/bash
# build.sh OUTDIR: assemble the web UI that vesseld serves (--web-dir).
# 1. Installs the npm packages pinned in web/package-lock.json (npm ci; the
#    npm cache makes a repeat offline-friendly). With VESSEL_WEB_DEV=1 the
#    devDependencies (playwright-core, for tests/integration/web_e2e) come
#    too. Skipped when node_modules already matches the lock file.
# 2. Copies web/src/* and the few files the page loads from the packages
#    into OUTDIR (normally BUILD/web): xterm.js + its fit addon and CSS,
#    uPlot's ES module and CSS, noVNC's core/ and the pako it imports.
# The browser fetches nothing from anywhere else.
set -euo pipefail
WEB=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: web/build.sh OUTDIR}
if ! command -v npm >/dev/null 2>&1; then
  echo "web/build.sh: npm is missing; run scripts/install-deps (it installs nodejs and npm)" >&2
  exit 1
fi
mode=prod
[ "${VESSEL_WEB_DEV:-0}" = 1 ] && mode=dev
stamp=$WEB/node_modules/.vessel-stamp
want="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1) $mode"
have=$(cat "$stamp" 2>/dev/null || true)
# a dev install is a superset of a prod one: keep it
if [ "$have" != "$want" ] && [ "$have" != "${want% *} dev" ]; then
  args=(ci --no-audit --no-fund --prefer-offline)
  [ "$mode" = prod ] && args+=(--omit=dev)
  (cd "$WEB" && npm "${args[@]}")
  echo "$want" > "$stamp"
fi
NM=$WEB/node_modules
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/vendor/xterm" "$OUT.tmp/vendor/uplot" "$OUT.tmp/vendor/novnc"
cp -R "$WEB/src/." "$OUT.tmp/"
cp "$NM/@xterm/xterm/lib/xterm.mjs" "$NM/@xterm/xterm/css/xterm.css" \
   "$NM/@xterm/addon-fit/lib/addon-fit.mjs" "$OUT.tmp/vendor/xterm/"
cp "$NM/uplot/dist/uPlot.esm.js" "$NM/uplot/dist/uPlot.min.css" "$OUT.tmp/vendor/uplot/"
cp -R "$NM/@novnc/novnc/core" "$NM/@novnc/novnc/vendor" "$OUT.tmp/vendor/novnc/"
for l in "$NM/@xterm/xterm/LICENSE" "$NM/uplot/LICENSE" "$NM/@novnc/novnc/LICENSE.txt"; do
  [ -f "$l" ] && cp "$l" "$OUT.tmp/vendor/$(basename "$(dirname "$l")")-$(basename "$l")"
done
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "web/build.sh: web UI in $OUT"
