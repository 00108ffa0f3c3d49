#!/usr/bin/env bash
# images/s of the real train.py loop (CIFAR-10, ImageNet stem, the automatic choice: 2 towers
# here), to set beside benchmark.py's synthetic figure; 2 epochs of 150 steps each, both kernel
# families. Usage: bash results/benchmark/train_py_path.sh (from the repository root; 2 minutes)
set -euo pipefail
out=results/benchmark/train_py_path.txt
python=${PYTHON:-python3}
: > $out
for environment in "TF_ENABLE_ONEDNN_OPTS=0" ""; do
  ckpt=$(mktemp -d)
  echo "\$ $environment python3 train.py --stem imagenet --epochs 2 --steps_per_epoch 150 --ckpt_dir $ckpt" >> $out
  env $environment $python train.py --stem imagenet --epochs 2 --steps_per_epoch 150 --ckpt_dir $ckpt 2>/dev/null \
    | grep -E '^CPU|^epoch [0-9]+/[0-9]+  ' >> $out
  rm -rf $ckpt
done
