#!/bin/bash
# Cutout on the validation split: the fast recipe for 16 epochs on 45,000 training images,
# 5,000 held out (--val_size 5000). The two runs go side by side, each pinned to one of
# the 2 cores, so their img/s are halved and only their accuracies compare. --towers 1: the
# fast preset of then (a later one trains in 2 towers).
# Run from the repository root.
set -e
pids=()
core=0
for cut in 0 8; do
  taskset -c $core python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 \
    --towers 1 --cutout $cut --ckpt_dir ckpt/tune_cutout$cut > results/tune_cutout/cutout$cut.log 2>&1 &
  pids+=($!)
  core=$((core + 1))
done
for pid in "${pids[@]}"; do wait $pid; done
for cut in 0 8; do cp ckpt/tune_cutout$cut/metrics.jsonl results/tune_cutout/cutout$cut.metrics.jsonl; done
