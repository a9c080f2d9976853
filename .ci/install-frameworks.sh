#!/usr/bin/env bash
# Install (or check, a no-op when satisfied) the frameworks the adapter tests run against,
# at the versions pinned in test-constraints.txt. Run by `hatch run test:all` before pytest,
# inside the test environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/system-packages.sh"
python -m pip install --quiet --disable-pip-version-check \
  -c "$here/test-constraints.txt" -r "$here/test-requirements.txt"
