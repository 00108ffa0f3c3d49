#!/usr/bin/env bash
# Issue 13's record (2): train.py at --image_size 224 (--stem imagenet) on a folder dataset of
# photo-sized JPEGs, its images/s, and the input pipeline's share of the step. The photos are a
# stand-in: CIFAR-10 JPEGs (../shared/cifar10/cifar10-jpeg.tar.xz), 120 training and 20 test
# images a class, upscaled to 500x375 and saved at JPEG quality 90: the size of a typical photo
# dataset's images, not their content. benchmark.py then times, in one process, the training
# step on synthetic batches and the streamed pipeline alone (read, decode, inception crop, flip)
# on the same photos. Share of the step spent waiting for input = 1 - (train.py img/s) /
# (synthetic step img/s).
# Usage: bash results/folder224/run.sh (from the repository root; about 10 minutes on 2 cores)
out=results/folder224
. results/cifar10_jpegs.sh
$python - "$work" <<'PY'
import os, sys
from PIL import Image
root = sys.argv[1]
for split, count in (('train', 120), ('test', 20)):
    for cls in sorted(os.listdir(os.path.join(root, split))):
        os.makedirs(os.path.join(root, 'photos', split, cls))
        for name in sorted(os.listdir(os.path.join(root, split, cls)))[:count]:
            Image.open(os.path.join(root, split, cls, name)).convert('RGB').resize(
                (500, 375), Image.BICUBIC).save(os.path.join(root, 'photos', split, cls, name),
                                                quality=90)
PY
flags="--image_size 224 --stem imagenet --batch_size 32"
echo "\$ python3 train.py --dataset folder --data_dir PHOTOS $flags --epochs 3 --ckpt_dir CKPT" > $out/train.log
$python train.py --dataset folder --data_dir "$work/photos" $flags --epochs 3 \
    --ckpt_dir "$work/ckpt" 2>/dev/null >> $out/train.log
cp "$work/ckpt/metrics.jsonl" $out/metrics.jsonl
echo "\$ python3 benchmark.py --stem imagenet --image_size 224 --batch_size 32 --steps 5 --repeats 3 --pipeline_dir PHOTOS/train --skip_keras --skip_torch --skip_real_path --latency_runs 5" > $out/benchmark.txt
$python benchmark.py --stem imagenet --image_size 224 --batch_size 32 --steps 5 --repeats 3 \
    --pipeline_dir "$work/photos/train" --skip_keras --skip_torch --skip_real_path --latency_runs 5 \
    --output $out/benchmark.json 2>&1 | grep -v -E '^I0000|^W0000|^WARNING: All log' >> $out/benchmark.txt
{
$python - $out <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(line) for line in open(out + '/metrics.jsonl')]
train = statistics.median(r['images_per_sec'] for r in rows[1:])  # epoch 1 holds the warm-up
medians = json.load(open(out + '/benchmark.json'))['medians']
step, pipeline = medians['train_images_per_sec'], medians['pipeline_images_per_sec']
print('train.py, epochs 2-3 (median): %.1f img/s' % train)
print('benchmark.py, synthetic step: %.1f img/s; pipeline alone: %.1f img/s (%.1fx the step)'
      % (step, pipeline, pipeline / step))
print("input pipeline's share of the step: %.1f%%" % (100 * max(0.0, 1 - train / step)))
PY
} | tee $out/summary.txt
