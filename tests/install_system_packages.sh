#!/usr/bin/env bash
# Install the Debian packages listed in tests/system_packages.txt that are missing.
# As root (CI, a fresh machine) they are installed; otherwise the missing ones are
# listed and the tests that need them skip, saying why (in CI they fail instead).
set -euo pipefail
list="$(dirname "$0")/system_packages.txt"
missing=()
while read -r pkg _; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$list"
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "installing system packages for the tests: ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: not root; tests needing ${missing[*]} will skip (install them with apt-get)" >&2
fi
