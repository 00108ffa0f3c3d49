#!/usr/bin/env bash
# Issue 23's check that moving the code into packages changed no behaviour: the command of
# results/multiworker's one-process run (the cifar preset, 3 epochs, one core, hence one tower),
# run again on the new layout; its metrics.jsonl is compared line by line with that record's
# one_process_metrics.jsonl (same seed, same kernels: the figures should agree up to the
# run-to-run jitter of multithreaded float sums). CIFAR-10 is the JPEG-decoded copy
# (quality 75) of ../shared/cifar10, as in the record. About 11 minutes on one core.
# Usage: bash results/refactor_check/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/refactor_check
python=${PYTHON:-.venv/bin/python}
[ -f cifar/test_batch ] || $python ../shared/cifar10/make_cifar10.py cifar/
taskset -c 0 $python train.py --epochs 3 --ckpt_dir ckpt/refactor_check >> $out/train.log 2>&1
cp ckpt/refactor_check/metrics.jsonl ckpt/refactor_check/config.json $out/
$python - <<'PY'
import json
before = [json.loads(l) for l in open('results/multiworker/one_process_metrics.jsonl')]
after = [json.loads(l) for l in open('results/refactor_check/metrics.jsonl')]
keys = ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy', 'test_macro_f1', 'lr',
        'images_per_sec')
with open('results/refactor_check/comparison.txt', 'w') as f:
    f.write('epoch  %s\n' % '  '.join('%s (before -> after)' % k for k in keys))
    for b, a in zip(before, after):
        f.write('%d  %s\n' % (a['epoch'], '  '.join('%s: %.6g -> %.6g' % (k, b[k], a[k]) for k in keys)))
print(open('results/refactor_check/comparison.txt').read())
PY
