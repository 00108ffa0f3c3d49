#!/usr/bin/env bash
# Issue 25's fine-tuning record: published ImageNet weights (the quantization-aware MobileNetV1
# 0.75/192 TFLite of ../shared/published, imported by import_weights.py: dequantized weights,
# batch norm folded into them) fine-tuned on a real photo dataset of other classes, CIFAR-10's
# JPEGs (../shared/cifar10/cifar10-jpeg.tar.xz) as class folders at 128x128: the first 500
# training images of each class, the first 200 test images of each (photos/train/, photos/test/).
#   head     stage 1: the new 10-class head alone, the base frozen (batch norm on the
#            checkpoint's statistics), 3 epochs, lr 0.01
#   frozen   stage 2 from head: every layer, --freeze_batch_norm 1, lr 0.001, 10 epochs
#   training stage 2 from head: every layer, batch norm training (the README's recipe before
#            issue 25), lr 0.001, 10 epochs
#   scratch  no weights restored, 13 epochs (head + stage 2), the cifar preset's recipe at
#            batch 32 (lr 0.05)
# each with seeds 0 and 1 (the head's initialisation, the order and augmentation of images).
# summary.md is the table of their last epochs.
# Usage: bash results/finetune_imagenet/run.sh (from the repository root; about an hour on 2
# cores, nothing else running). Resumable: its work folder ($WORK, default /tmp/finetune_imagenet) keeps the runs,
# and running it again continues each from its newest checkpoint.
set -euo pipefail
out=results/finetune_imagenet
python=${PYTHON:-python3}
work=${WORK:-/tmp/finetune_imagenet}
mkdir -p "$work"
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' > $out/cpu_flags.txt
if [ ! -d "$work/photos" ]; then
  rm -rf "$work/jpeg" && mkdir -p "$work/jpeg"
  tar -xJf ../shared/cifar10/cifar10-jpeg.tar.xz -C "$work/jpeg"
  $python - "$work" <<'PY'
import os, shutil, sys
root = sys.argv[1]
for split, each, target in (('train', 500, 'photos.tmp/train'), ('test', 200, 'photos.tmp/test')):
    for c in sorted(os.listdir(os.path.join(root, 'jpeg', split))):
        os.makedirs(os.path.join(root, target, c))
        for f in sorted(os.listdir(os.path.join(root, 'jpeg', split, c)))[:each]:
            shutil.copy(os.path.join(root, 'jpeg', split, c, f), os.path.join(root, target, c, f))
os.rename(os.path.join(root, 'photos.tmp'), os.path.join(root, 'photos'))
PY
  rm -rf "$work/jpeg"
fi
echo "\$ python3 import_weights.py ../shared/published/mobilenet_v1_0.75_192_quant.tflite WORK/imagenet_0.75_192" > $out/import.txt
$python import_weights.py ../shared/published/mobilenet_v1_0.75_192_quant.tflite "$work/imagenet_0.75_192" >> $out/import.txt
common="--dataset folder --data_dir $work/photos --image_size 128 --stem imagenet --width 0.75
  --normalization inception --batch_size 32 --eval_batch_size 200"
run() {  # name, flags
  local name=$1; shift
  echo "\$ python3 train.py $(echo $common | sed "s#$work#WORK#g") $(echo "$@" | sed "s#$work#WORK#g") --ckpt_dir WORK/$name" > $out/$name.txt
  $python train.py $common "$@" --ckpt_dir "$work/$name" 2>/dev/null | tr '\r' '\n' | grep -v '^ *[0-9]*%|' >> $out/$name.txt
  cp "$work/$name/metrics.jsonl" $out/$name.metrics.jsonl
}
for seed in 0 1; do
  run head_s$seed --seed $seed --load_pretrain 1 --pretrain_path "$work/imagenet_0.75_192" \
    --checkpoint_exclude_scopes MobilenetV1/Logits --trainable_scopes MobilenetV1/Logits --lr 0.01 --epochs 3
  run frozen_s$seed --seed $seed --load_pretrain 1 --pretrain_path "$work/head_s$seed" --freeze_batch_norm 1 \
    --lr 0.001 --epochs 10
  run training_s$seed --seed $seed --load_pretrain 1 --pretrain_path "$work/head_s$seed" --lr 0.001 --epochs 10
  run scratch_s$seed --seed $seed --lr 0.05 --epochs 13
done
$python - $out <<'PY' > $out/summary.md
import json, os, sys
out = sys.argv[1]
rows = {}
for name in sorted(os.listdir(out)):
    if name.endswith('.metrics.jsonl'):
        run, seed = name[:-len('.metrics.jsonl')].rsplit('_s', 1)
        last = [json.loads(line) for line in open(os.path.join(out, name))][-1]
        rows.setdefault(run, []).append((int(seed), last))
print('| run | epochs | test accuracy (seed 0, 1) | test macro F1 (seed 0, 1) | train minutes |')
print('|---|---|---|---|---|')
for run in ('head', 'frozen', 'training', 'scratch'):
    seeds = sorted(rows.get(run, []), key=lambda item: item[0])
    print('| %s | %s | %s | %s | %s |' % (
        run, seeds[0][1]['epoch'] if seeds else '-',
        ', '.join('%.4f' % r['test_accuracy'] for _, r in seeds),
        ', '.join('%.4f' % r['test_macro_f1'] for _, r in seeds),
        ', '.join('%.1f' % (r['train_seconds'] / 60) for _, r in seeds)))
PY
cat $out/summary.md
