#!/bin/bash
# Schedule shape, stem and width on the validation split: the fast recipe for 16 epochs on
# 45,000 training images, 5,000 held out (--val_size 5000), in one tower, as
# results/tune_cutout/run.sh ran its baseline (cutout0: linear schedule, cifar stem, width 1.0),
# which is what each is compared with. The cosine run has core 0; the ImageNet-stem run and
# then the width-0.5 run (both several times cheaper) share core 1. Run from the repository root.
set -e
out=results/tune_schedule_stem_width
run() {  # core, name, flags...
  local core=$1 name=$2; shift 2
  taskset -c "$core" python3 train.py --preset fast --val_size 5000 --epochs 16 --eval_every 4 \
    --towers 1 "$@" --ckpt_dir "ckpt/tune_$name" > "$out/$name.log" 2>&1
  cp "ckpt/tune_$name/metrics.jsonl" "$out/$name.metrics.jsonl"
}
run 0 cosine --lr_schedule cosine &
a=$!
(run 1 stem_imagenet --stem imagenet && run 1 width0.5 --width 0.5) &
b=$!
wait $a
wait $b
