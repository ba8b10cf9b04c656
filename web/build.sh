#!/usr/bin/env bash
# Rebuild the charting library that ships inside the package, from the pinned npm lock.
# Users of `pip install razzle` never need npm: the copied files are part of the package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../razzle/server/static/vendor/uplot"
cd "$here"
npm ci --ignore-scripts --no-audit --no-fund
version="$(node -p 'require("./node_modules/uplot/package.json").version')"
mkdir -p "$dest"
for file in dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE; do
    cp "node_modules/uplot/$file" "$dest/"
done
(
    cd "$dest"
    echo "uplot $version from the npm registry, pinned by web/package-lock.json; rebuilt by web/build.sh"
    sha256sum uPlot.iife.min.js uPlot.min.css LICENSE
) > "$dest/SOURCE"
echo "copied uplot $version to $dest"
