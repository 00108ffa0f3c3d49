#!/usr/bin/env bash
# Issue 13's input-pipeline check: at --image_size 224 on this machine, does decoding and
# augmentation alone (image_pipeline.py: read, decode, slim's inception crop, flip) run at
# 2x or more the training step's images/s? The photos are a stand-in: 400 CIFAR-10 training
# images (40 a class, from ../shared/cifar10/cifar10-jpeg.tar.xz) upscaled to 500x375 and
# saved as JPEG quality 90, the size of a typical photo dataset's images, not their content.
# Usage: bash results/pipeline/run.sh (from the repository root; about 2 minutes)
set -euo pipefail
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xJf ../shared/cifar10/cifar10-jpeg.tar.xz -C "$work"
$python - "$work" <<'PY'
import os, sys
from PIL import Image
root = sys.argv[1]
for cls in sorted(os.listdir(os.path.join(root, 'train'))):
    os.makedirs(os.path.join(root, 'photos', cls))
    for name in sorted(os.listdir(os.path.join(root, 'train', cls)))[:40]:
        Image.open(os.path.join(root, 'train', cls, name)).convert('RGB').resize(
            (500, 375), Image.BICUBIC).save(os.path.join(root, 'photos', cls, name), quality=90)
PY
out=results/pipeline/benchmark_224.txt
echo '$ python3 benchmark.py --stem imagenet --image_size 224 --batch_size 32 --steps 5 --repeats 3 --pipeline_dir PHOTOS --skip_keras --skip_torch --skip_real_path --latency_runs 5' > $out
$python benchmark.py --stem imagenet --image_size 224 --batch_size 32 --steps 5 --repeats 3 \
    --pipeline_dir "$work/photos" --skip_keras --skip_torch --skip_real_path --latency_runs 5 \
    --output results/pipeline/benchmark_224.json 2>&1 | grep -v -E '^I0000|^W0000|^WARNING: All log' >> $out
