#!/bin/bash
# Label smoothing 0.2 and batch 256 (lr 0.4, the linear-scaling rule) on the validation split:
# the fast recipe for 16 epochs on 45,000 training images, 5,000 held out (--val_size 5000),
# in one tower. The two runs go side by side, each pinned to one core, exactly as
# results/tune_cutout/run.sh ran its baseline (cutout0: label smoothing 0.1, batch 128, lr 0.2),
# which is what both are compared with. Run from the repository root.
set -e
taskset -c 0 python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 --towers 1 \
  --label_smoothing 0.2 --ckpt_dir ckpt/tune_smoothing2 > results/tune_smoothing_batch/smoothing0.2.log 2>&1 &
a=$!
taskset -c 1 python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 --towers 1 \
  --batch_size 256 --lr 0.4 --ckpt_dir ckpt/tune_batch256 > results/tune_smoothing_batch/batch256.log 2>&1 &
b=$!
wait $a
wait $b
cp ckpt/tune_smoothing2/metrics.jsonl results/tune_smoothing_batch/smoothing0.2.metrics.jsonl
cp ckpt/tune_batch256/metrics.jsonl results/tune_smoothing_batch/batch256.metrics.jsonl
