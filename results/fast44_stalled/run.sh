#!/usr/bin/env bash
# The command of command.txt (results/fast44_stalled), run at commit b9331a5 and stopped with
# SIGTERM in epoch 24 once the tf.data stall was found (NOTE.md). Today's code has no stall and
# today's 'fast' preset differs (52 epochs, 2 towers), so this does not reproduce the record;
# reinit_check.py is the standalone check of the stall (see NOTE.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
out=results/fast44_stalled
$python train.py --preset fast --ckpt_dir ckpt/fast44 > $out/train.log
cp ckpt/fast44/metrics.jsonl $out/
