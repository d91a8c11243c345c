#!/usr/bin/env bash
# Builds the Debian package build/troupe_<version>_amd64.deb (CPack's DEB
# generator: the binary, the systemd unit template troupe@.service, an
# example node configuration in /etc/troupe, the docs).
#
#   scripts/package.sh            build it
#   scripts/package.sh --check    build it, install it with dpkg -i, run
#                                 `troupe version` and `troupe config check`
#                                 from the installed files, verify the unit
#                                 with systemd-analyze, then purge it
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || scripts/build.sh
cmake --build "$build" --target troupe
(cd "$build" && cpack -G DEB > cpack.log) || { cat "$build/cpack.log"; exit 1; }
deb=$(ls -t "$build"/troupe_*_amd64.deb | head -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
[ "${1:-}" = --check ] || exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if dpkg-query -W -f='${Status}' troupe 2>/dev/null | grep -q "ok installed"; then
  echo "package --check: a troupe package is installed already; not touching it" >&2
  exit 1
fi
trap '$SUDO dpkg --purge troupe > /dev/null' EXIT
$SUDO dpkg -i "$deb"
/usr/bin/troupe version
/usr/bin/troupe config check /etc/troupe/node.toml
dpkg -L troupe | grep -q /usr/share/doc/troupe/quickstart.md
getent passwd troupe > /dev/null
if command -v systemd-analyze > /dev/null; then
  # Offline: checks the unit's syntax, its commands and its user.
  systemd-analyze verify /usr/lib/systemd/system/troupe@.service
fi
echo "package --check: ok"
