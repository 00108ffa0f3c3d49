#!/usr/bin/env bash
# Issue 13's record (3): transfer learning as TF-Slim's, on a folder dataset of other classes.
# The checkpoint is the CIFAR-10 model shipped in pretrained/ (10 classes); the task is 2 new
# classes, animal and vehicle, made of CIFAR-10 JPEGs (../shared/cifar10/cifar10-jpeg.tar.xz):
# 1,000 training images a class from train/, 500 test images a class from test/. Stage 1
# restores every layer but the logits (excluded: 10 classes there, 2 here) and trains the
# logits alone, the base frozen with batch norm on its moving statistics; stage 2 trains every
# layer from stage 1 at a lower rate. A run from scratch with as many epochs is the baseline.
# Usage: bash results/finetune/run.sh (from the repository root; a few minutes on 2 cores)
out=results/finetune
. results/cifar10_jpegs.sh
$python - "$work" <<'PY'
import os, shutil, sys
root = sys.argv[1]
groups = dict(vehicle=['airplane', 'automobile', 'ship', 'truck'],
              animal=['bird', 'cat', 'deer', 'dog', 'frog', 'horse'])
for split, per_group in (('train', 1000), ('test', 500)):
    for group, classes in groups.items():
        os.makedirs(os.path.join(root, 'two', split, group))
        each = -(-per_group // len(classes))
        files = [(c, f) for c in classes for f in sorted(os.listdir(os.path.join(root, split, c)))[:each]]
        for c, f in files[:per_group]:
            shutil.copy(os.path.join(root, split, c, f), os.path.join(root, 'two', split, group, c + '_' + f))
PY
common="--dataset folder --data_dir $work/two --batch_size 64 --eval_batch_size 250"
run() {  # name, flags
  local name=$1; shift
  echo "\$ python3 train.py $common $* --ckpt_dir CKPT/$name" > $out/$name.txt
  $python train.py $common "$@" --ckpt_dir "$work/ckpt/$name" 2>/dev/null >> $out/$name.txt
  cp "$work/ckpt/$name/metrics.jsonl" $out/$name.metrics.jsonl
}
run head --load_pretrain 1 --pretrain_path pretrained --checkpoint_exclude_scopes MobilenetV1/Logits \
  --trainable_scopes MobilenetV1/Logits --lr 0.05 --epochs 3
run all --load_pretrain 1 --pretrain_path "$work/ckpt/head" --lr 0.01 --epochs 3
run scratch --epochs 6
