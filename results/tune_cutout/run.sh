#!/bin/bash
# Cutout on the validation split: the fast recipe for 16 epochs on 45,000 training images,
# 5,000 held out (--val_size 5000); both runs side by side on the 2-core CPU, so their
# img/s are halved and only their accuracies are comparable. Run from the repository root.
set -e
for cut in 0 8; do
  python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 --cutout $cut \
    --ckpt_dir ckpt/tune_cutout$cut > results/tune_cutout/cutout$cut.log 2>&1 &
done
wait
for cut in 0 8; do cp ckpt/tune_cutout$cut/metrics.jsonl results/tune_cutout/cutout$cut.metrics.jsonl; done
