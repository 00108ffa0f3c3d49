#!/usr/bin/env bash
# Two workers on this 2-core machine, one core each (taskset), against one process on one core,
# the same global batch (128), recipe (cifar preset) and epochs; then a one-core process at the
# per-worker batch (64) for the step time without the all-reduce.
# CIFAR-10 here is JPEG-decoded (quality 75): figures are close to, not equal to, the official set's.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/multiworker
EPOCHS=${EPOCHS:-3}
rm -rf ckpt/mw2 ckpt/mw1 ckpt/mw64
tf_config() { echo "{\"cluster\": {\"worker\": [\"localhost:23500\", \"localhost:23501\"]}, \"task\": {\"type\": \"worker\", \"index\": $1}}"; }
TF_CONFIG=$(tf_config 1) taskset -c 1 .venv/bin/python train.py --epochs $EPOCHS --ckpt_dir ckpt/mw2 > $out/worker1.log 2>&1 &
TF_CONFIG=$(tf_config 0) taskset -c 0 .venv/bin/python train.py --epochs $EPOCHS --ckpt_dir ckpt/mw2 > $out/worker0.log 2>&1
wait
cp ckpt/mw2/metrics.jsonl $out/two_workers_metrics.jsonl
taskset -c 0 .venv/bin/python train.py --epochs $EPOCHS --ckpt_dir ckpt/mw1 > $out/one_process.log 2>&1
cp ckpt/mw1/metrics.jsonl $out/one_process_metrics.jsonl
taskset -c 0 .venv/bin/python train.py --epochs 1 --steps_per_epoch 150 --batch_size 64 --ckpt_dir ckpt/mw64 > $out/one_process_batch64.log 2>&1
cp ckpt/mw64/metrics.jsonl $out/one_process_batch64_metrics.jsonl
