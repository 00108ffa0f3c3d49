#!/bin/bash
# Two towers (each batch of 128 split into two networks of 64 sharing variables) on the
# validation split: the same run as results/tune_cutout's baseline (the fast recipe for 16
# epochs on 45,000 training images, 5,000 held out) with --towers 2, to compare accuracy with
# its cutout0 run. Pinned to one core like that baseline (the best run had the other), so
# its img/s says nothing about speed. Run from the repository root.
set -e
taskset -c 1 python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 \
  --towers 2 --ckpt_dir ckpt/tune_towers2 > results/tune_towers/towers2.log 2>&1
cp ckpt/tune_towers2/metrics.jsonl results/tune_towers/towers2.metrics.jsonl
