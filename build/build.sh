#!/usr/bin/env bash
# One-file build: dist/appliance, a single executable with the small built-in models inside, and
# dist/models/chat.gguf, the standard built-in chat model (1.1 GB), which the binary finds beside
# itself. Ship both; without dist/models/ set `builtin_chat = "small"` in [models].
#
#   build/build.sh            build (incremental: PyInstaller reuses build/work), then smoke-test
#   build/build.sh --clean    rebuild from scratch (empties build/work first)
#   build/build.sh --no-smoke build only
#
# Needs what `./dev setup` installs (.venv with PyInstaller, the built-in models). The spec is
# build/appliance.spec; PyInstaller's work files, its cache included, go to build/work and the
# result to dist/ (both ignored by git). build/smoke.py then runs the binary with an empty
# environment (init, serve, a chat, token create) and prints its size, cold start and idle RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

clean=0
smoke=1
for arg in "$@"; do
    case "$arg" in
        --clean) clean=1 ;;
        --no-smoke) smoke=0 ;;
        *) echo "usage: build/build.sh [--clean] [--no-smoke]" >&2; exit 64 ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ ! -x .venv/bin/pyinstaller ]; then
    echo "build/build.sh: .venv/bin/pyinstaller is missing; run ./dev setup first" >&2
    exit 2
fi

say "built-in models"
.venv/bin/python build/assemble_models.py

if [ "$clean" -eq 1 ]; then
    rm -rf build/work dist/appliance
fi
mkdir -p build/work
# PyInstaller's own cache (bootloader and binary-analysis caches) lives with the work files, not in ~/.cache.
export PYINSTALLER_CONFIG_DIR="$PWD/build/work/pyinstaller-cache"

say "PyInstaller (build/appliance.spec -> dist/appliance)"
started=$(date +%s)
.venv/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/work build/appliance.spec
say "built dist/appliance ($(( $(stat -c %s dist/appliance) / 1000000 )) MB) in $(( $(date +%s) - started ))s"
# The standard chat model lies beside the binary (a hard link where the file system allows one).
mkdir -p dist/models
rm -f dist/models/chat.gguf
ln appliance/local_model/models/chat.gguf dist/models/chat.gguf 2>/dev/null \
    || cp appliance/local_model/models/chat.gguf dist/models/chat.gguf

if [ "$smoke" -eq 1 ]; then
    say "smoke test (build/smoke.py)"
    .venv/bin/python build/smoke.py dist/appliance
fi
