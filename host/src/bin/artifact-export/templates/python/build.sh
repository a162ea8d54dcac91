#!/bin/sh
# Builds {{file}}.wasm from app.py with componentize-py (requirements.txt pins it).
# `--stub-wasi` replaces every WASI import with a trap: CPython imports wasi:sockets, which
# the host never links, and a component that imports it does not load.
set -e
cd "$(dirname "$0")"
componentize-py --wit-path wit --world copy-policy componentize --stub-wasi --python-path . app --output {{file}}.wasm
