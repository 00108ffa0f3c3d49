#!/bin/bash
# Speed of --towers 1 against --towers 2 on the real train.py path: the fast preset (weight
# averages, flip-TTA scoring) for 2 epochs of 200 steps, scored at the end; the two settings
# alternate, 3 times each. Quotes epoch 2's training img/s (epoch 1 warms up) and the seconds
# of scoring and saving. Run from the repository root on an otherwise idle machine.
set -e
out=$(mktemp -d)
for rep in 1 2 3; do
  for towers in 1 2; do
    python3 train.py --preset fast --towers $towers --steps_per_epoch 200 --epochs 2 --eval_every 2 \
      --ckpt_dir $out/t${towers}_$rep > $out/t${towers}_$rep.log 2>&1
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
speed = {}
for towers in (1, 2):
    rows = []
    for rep in (1, 2, 3):
        first, second = [json.loads(l) for l in open('%s/t%d_%d/metrics.jsonl' % (out, towers, rep))]
        # Wall time of epoch 2 beyond its training steps: scoring (test set, flip TTA) and saving.
        other = second['wall_seconds'] - first['wall_seconds'] - (second['train_seconds'] - first['train_seconds'])
        rows.append((second['images_per_sec'], other))
    speed[towers] = statistics.median(r[0] for r in rows)
    print('--towers %d: epoch-2 img/s %s (median %.0f); scoring + saving s %s'
          % (towers, ' '.join('%.0f' % r[0] for r in rows), speed[towers],
             ' '.join('%.1f' % r[1] for r in rows)))
print('ratio towers 2 / towers 1: %.2fx' % (speed[2] / speed[1]))
PY
