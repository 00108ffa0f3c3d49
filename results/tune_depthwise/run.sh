#!/bin/bash
# Weight decay on the depthwise filters too (--regularize_depthwise 1; slim leaves them
# undecayed), on the validation split: the same run as results/tune_towers (the fast recipe
# for 16 epochs, 2 towers, 45,000 training images, 5,000 held out), with that one flag
# changed, to compare with its towers2 run. Both cores, nothing beside it.
# Run from the repository root.
set -e
python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 --towers 2 \
  --regularize_depthwise 1 --ckpt_dir ckpt/tune_depthwise > results/tune_depthwise/depthwise.log 2>&1
cp ckpt/tune_depthwise/metrics.jsonl results/tune_depthwise/depthwise.metrics.jsonl
