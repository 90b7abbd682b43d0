#!/usr/bin/env bash
# What benchmarks/gpu.py needs on the GPU machine beyond ../shared/device/pack: wrk (Debian's C load
# generator, with its LuaJIT) and the wheel of the server's C HTTP parser for Python 3.12 (uvloop is there).
# Run from the project root after `bash ../shared/device/pack`; `.device/setup.sh` installs .device/whl/*.whl.
set -euo pipefail
[ -d .device/whl ] || { echo "run bash ../shared/device/pack first"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk here: apt-get install wrk"; exit 1; }
mkdir -p .device/bin
cp "$(command -v wrk)" .device/bin/wrk
cp "$(ldconfig -p | awk '/libluajit-5.1.so.2 /{print $NF; exit}')" .device/bin/libluajit-5.1.so.2
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device/whl \
    httptools==0.9.0 2> >(grep -v WARNING >&2)
size=$( (git ls-files -co --exclude-standard -z | du -c --apparent-size --block-size=1 --files0-from=- | tail -1 | cut -f1; du -s --apparent-size --block-size=1 .device | cut -f1) | paste -sd+ | bc)
echo "kit ready: the tree that travels is about $((size / 1048576)) MiB of 64"
