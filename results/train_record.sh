#!/usr/bin/env bash
# One training record: train.py with the flags given and --ckpt_dir ckpt/NAME, its output added
# to results/NAME/train.log (a resumed run's lines follow the first's), then the run's
# metrics.jsonl and config.json copied into results/NAME/. Run again, it resumes the run.
# Usage: bash results/train_record.sh NAME [train.py flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
python=${PYTHON:-.venv/bin/python}
$python train.py "$@" --ckpt_dir "ckpt/$name" >> "results/$name/train.log"
cp "ckpt/$name/metrics.jsonl" "ckpt/$name/config.json" "results/$name/"
