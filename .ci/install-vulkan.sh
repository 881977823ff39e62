#!/usr/bin/env bash
# Installs Mesa 25's software Vulkan driver (lavapipe) from Debian's
# bookworm-backports suite, so WebGPU (Dawn) has an adapter on a machine
# with no GPU. Dawn refuses Mesa 22 from plain bookworm. Idempotent.
set -euo pipefail

if [ "$(id -u)" != "0" ]; then
  echo "install-vulkan: needs root (apt-get)" >&2
  exit 1
fi
sources=/etc/apt/sources.list.d/debian.sources
if [ ! -f "$sources" ]; then
  echo "install-vulkan: $sources not found; cannot find the Debian mirror" >&2
  exit 1
fi
# The mirror is whatever this machine already uses: the first URIs: line.
uri=$(awk '/^URIs:/ { print $2; exit }' "$sources")
if [ -z "$uri" ]; then
  echo "install-vulkan: no URIs: line in $sources" >&2
  exit 1
fi
backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$backports" ]; then
  cat > "$backports" <<STANZA
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
STANZA
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
echo "install-vulkan: $(dpkg-query -W -f='${Package} ${Version}' mesa-vulkan-drivers)"
