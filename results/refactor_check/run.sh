#!/usr/bin/env bash
# Issue 23's check that moving the code into packages changed no behaviour: the command of
# results/multiworker's one-process run (the cifar preset, 3 epochs, one core, hence one tower),
# run again on the new layout; its metrics.jsonl is compared line by line with that record's
# one_process_metrics.jsonl (same seed, same kernels: the figures should agree up to the
# run-to-run jitter of multithreaded float sums). CIFAR-10 is the JPEG-decoded copy
# (quality 75) of ../shared/cifar10, as in the record. About 11 minutes on one core. Each run
# writes into a folder of its day (results/refactor_check/YYYY-MM-DD/); run again, the same
# command resumes an interrupted run.
# Usage: bash results/refactor_check/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
day=${DAY:-$(date -u +%F)}
out=results/refactor_check/$day
python=${PYTHON:-.venv/bin/python}
mkdir -p $out
[ -f cifar/test_batch ] || $python ../shared/cifar10/make_cifar10.py cifar/
taskset -c 0 $python train.py --epochs 3 --ckpt_dir ckpt/refactor_check_$day >> $out/train.log 2>&1
cp ckpt/refactor_check_$day/metrics.jsonl ckpt/refactor_check_$day/config.json $out/
$python - $out <<'PY'
import json, sys
out = sys.argv[1]
before = [json.loads(l) for l in open('results/multiworker/one_process_metrics.jsonl')]
after = [json.loads(l) for l in open(out + '/metrics.jsonl')]
keys = ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy', 'test_macro_f1', 'lr',
        'images_per_sec')
with open(out + '/comparison.txt', 'w') as f:
    f.write('epoch  %s\n' % '  '.join('%s (before -> after)' % k for k in keys))
    for b, a in zip(before, after):
        f.write('%d  %s\n' % (a['epoch'], '  '.join('%s: %.6g -> %.6g' % (k, b[k], a[k]) for k in keys)))
print(open(out + '/comparison.txt').read())
PY
