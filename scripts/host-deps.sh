#!/usr/bin/env bash
# Host tools: the image bootstrap needs debootstrap; the report tests render pages in headless
# chromium. Installed from Debian packages when missing. Extra package names given as arguments
# (e.g. python3-venv, when `python3 -m venv` fails) are installed when dpkg does not have them.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || [ ! -f /etc/debian_version ]; then
  echo "host-deps: missing ${missing[*]}: install them (e.g. \`sudo apt-get install ${missing[*]}\`) and rerun" >&2
  exit 1
fi
echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
