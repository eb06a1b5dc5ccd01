#!/usr/bin/env bash
# `make demo`: build the seed's multiterminal example in a throw-away store and show it working.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
export MTCTL_DATABASE_URL="sqlite:///$workdir/demo.db"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi

step "bash examples/multiterminal.sh   (builds the store with plain mtctl commands)"
bash "$here/multiterminal.sh" 2>/dev/null
step "mtctl user phones ana --format table   (the default on a terminal; piped: tab-separated)"
mtctl user phones ana --format table
step "mtctl check"
mtctl check
step "mtctl ring-sim 40710 --format table"
mtctl ring-sim 40710 --format table
step "mtctl ring-sim 40710 --webcall-running --format table"
mtctl ring-sim 40710 --webcall-running --format table
printf '\nThe demo store lived in %s and is removed now.\n' "$workdir"
