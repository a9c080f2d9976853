#!/usr/bin/env bash
# The system packages the test suite needs: Debian's chromium and chromium-driver (the
# dashboard is tested in a real headless browser). Installs them when missing and when run
# as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: the browser tests need: sudo apt-get install ${missing[*]}" >&2
fi
