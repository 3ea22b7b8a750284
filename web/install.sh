#!/bin/sh
# install.sh: meson install step for the web UI. Copies the folder that
# web/build.sh assembled (BUILD/web) to DATADIR/vessel/web, vesseld's default
# --web-dir for an installed daemon. Nothing to do when the UI was not built
# (a build without node/npm): vesseld then answers / with a 404 saying so.
set -eu
src=$1
dst=${DESTDIR:-}$2
if [ ! -f "$src/index.html" ]; then
  echo "web/install.sh: $src/index.html missing; run web/build.sh first (make build does)" >&2
  exit 0
fi
mkdir -p "$dst"
cp -R "$src/." "$dst/"
