#!/usr/bin/env bash
# The system packages the test suite needs: Debian's chromium and chromium-driver (the
# dashboard is tested in a real headless browser) and postgresql (the team server's tests start
# a private PostgreSQL cluster of their own with its initdb and pg_ctl; no server needs to be
# running). Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# the PostgreSQL programs live in /usr/lib/postgresql/<version>/bin on Debian (not on PATH)
have_postgres=no
for bindir in /usr/lib/postgresql/*/bin; do
  if [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ]; then
    have_postgres=yes
  fi
done
if [ "$have_postgres" = no ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  have_postgres=yes
fi
[ "$have_postgres" = yes ] || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: the test suite needs: sudo apt-get install ${missing[*]}" >&2
fi
