#!/usr/bin/env bash
# The detector's speed on this machine, nothing else running: training images/s at 416, batch 8,
# width 0.75 against its FLOPs and the matmul peak, the train.py path on the raccoon photos and
# its pipeline alone, and the frozen detector's latency at 320 and 416 (benchmark.py --task detect).
source "$(dirname "$0")/paths.sh"
"$PYTHON" benchmark.py --task detect --width 0.75 --data_dir "$WORK/voc" \
  --output "$HERE/benchmark_detect.json" | grep -v '^{' | tee "$HERE/benchmark_detect.log"
