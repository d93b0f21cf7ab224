#!/usr/bin/env bash
# mypy over the one import root. The package-dir mapping (algorithms/ -> rlvr.algorithms) is invisible
# to mypy, so lay the packages out as they are installed, with links, in a scratch folder.
set -euo pipefail
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rlvr"
for entry in "$root"/rlvr/*; do ln -s "$entry" "$tmp/rlvr/$(basename "$entry")"; done
ln -s "$root/algorithms" "$tmp/rlvr/algorithms"
ln -s "$root/verifiers" "$tmp/rlvr/verifiers"
MYPYPATH="$tmp" "${MYPY:-mypy}" --config-file "$root/pyproject.toml" -p rlvr
