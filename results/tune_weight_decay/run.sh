#!/bin/bash
# Weight decay 2.5e-4 and 1e-3 (the presets: 5e-4) on the validation split: the fast recipe for
# 16 epochs on 45,000 training images, 5,000 held out (--val_size 5000), in one tower. The two
# runs go side by side, each pinned to one core, as results/tune_cutout/run.sh ran its baseline
# (cutout0), which is what both are compared with. Run from the repository root.
set -e
out=results/tune_weight_decay
for wd in 2.5e-4 1e-3; do
  core=$([ "$wd" = 2.5e-4 ] && echo 0 || echo 1)
  taskset -c "$core" python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 \
    --towers 1 --weight_decay "$wd" --ckpt_dir "ckpt/tune_wd$wd" > "$out/wd$wd.log" 2>&1 &
done
wait
for wd in 2.5e-4 1e-3; do cp "ckpt/tune_wd$wd/metrics.jsonl" "$out/wd$wd.metrics.jsonl"; done
