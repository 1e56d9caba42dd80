#!/usr/bin/env bash
# The size of a fresh environment with remem installed (no dev extras), and its largest parts.
#   bash benchmarks/env_size.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$here"
echo "environment: $(du -sh "$venv" | cut -f1) in $venv"
echo "largest packages:"
du -s "$venv"/lib/python3*/site-packages/* | sort -rn | head -8 \
  | awk '{printf "  %6.1f MB  %s\n", $1/1024, $2}' | sed "s|$venv/lib/python3[^/]*/site-packages/||"
rm -rf "$(dirname "$venv")"
