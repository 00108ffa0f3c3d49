#!/usr/bin/env bash
# Whether batch-norm statistics limit the runs of run.sh: precise_bn.py on each run's last
# checkpoint (the head's batch norms; scratch's backbone too, the only start that trains its
# backbone's), then evaluate.py at 416 on the result. Logs to bn_START.log, the scores to
# metrics_precise_bn.jsonl. Usage: bash bn_check.sh [imagenet|scratch|coco_ssd]...
source "$(dirname "$0")/paths.sh"
starts=("$@")
[ ${#starts[@]} -gt 0 ] || starts=(imagenet scratch coco_ssd)
for start in "${starts[@]}"; do
  run=$WORK/runs/${start}_416
  latest=$(ls "$run"/model.ckpt-*.index | sed 's/\.index$//' | sort -t- -k2 -n | tail -1)
  scopes=YoloV3/
  [ "$start" != scratch ] || scopes=MobilenetV1/,YoloV3/
  "$PYTHON" "$HERE/precise_bn.py" "$latest" "$WORK/precise_bn/$start" "$scopes" 2>/dev/null \
    > "$HERE/bn_${start}.log"
  "$PYTHON" evaluate.py "$WORK/precise_bn/$start" \
    --detections "$WORK/precise_bn/detections_$start.json" 2>/dev/null | tail -1 \
    | "$PYTHON" -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(start='$start', size=416, statistics='precise'); print(json.dumps(r))" >> "$HERE/metrics_precise_bn.jsonl"
done
