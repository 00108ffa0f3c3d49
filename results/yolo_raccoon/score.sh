#!/usr/bin/env bash
# Scores the raccoon runs of run.sh on the 40 test photos at 416 and 320 (each run's last
# checkpoint: the test split also chose best/, so best/ would flatter), freezes the COCO-SSD
# start to .pb, TFLite float32 and int8, and ONNX and scores each, and draws its predictions on
# four test photos. Appends to metrics.jsonl; writes how close the forms' boxes are to the .pb's
# in frozen_agreement.jsonl, and OpenCV's on the model frozen without suppression in
# opencv_check.json. Usage: bash score.sh [coco_ssd|imagenet|scratch|coco_ssd_ciou|...]...
source "$(dirname "$0")/paths.sh"
out=$HERE/metrics.jsonl
starts=("$@")
[ ${#starts[@]} -gt 0 ] || starts=(coco_ssd imagenet scratch)
for start in "${starts[@]}"; do
  run=$WORK/runs/${start}_416
  [ -f "$run/metrics.jsonl" ] || continue
  latest=$(ls "$run"/model.ckpt-*.index | sed 's/\.index$//' | sort -t- -k2 -n | tail -1)
  for size in 416 320; do
    "$PYTHON" evaluate.py "$latest" --image_size $size \
      --detections "$WORK/detections_${start}_$size.json" | tail -1 \
      | "$PYTHON" -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(start='$start', size=$size); print(json.dumps(r))" >> "$out"
  done
done
if [[ " ${starts[*]} " == *" coco_ssd "* ]]; then
  run=$WORK/runs/coco_ssd_416
  latest=$(ls "$run"/model.ckpt-*.index | sed 's/\.index$//' | sort -t- -k2 -n | tail -1)
  "$PYTHON" freeze_graph.py --ckpt "$latest" --output "$WORK/frozen/yolo416.pb" \
    --tflite float32,int8 --onnx --calibration_images 100
  for model in yolo416.pb yolo416.tflite yolo416_int8.tflite yolo416.onnx; do
    "$PYTHON" evaluate.py "$WORK/frozen/$model" | tail -1 \
      | "$PYTHON" -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(start='coco_ssd', size=416, form='$model'); print(json.dumps(r))" >> "$out"
  done
  # How close each form's boxes are to the .pb's (evaluate.py's detections beside each file).
  F=$WORK/frozen
  "$PYTHON" "$HERE/compare_detections.py" "$F/yolo416_pb_detections_test.json" \
    "$F/yolo416_tflite_detections_test.json" "$F/yolo416_int8_tflite_detections_test.json" \
    "$F/yolo416_onnx_detections_test.json" > "$HERE/frozen_agreement.jsonl"
  # Without suppression (--nms 0), for OpenCV's dnn: its boxes against the .pb's.
  "$PYTHON" freeze_graph.py --ckpt "$latest" --output "$F/yolo416_nms0.pb" --onnx --nms 0
  for model in yolo416_nms0.pb yolo416_nms0.tflite yolo416_nms0.onnx; do
    "$PYTHON" evaluate.py "$F/$model" | tail -1 \
      | "$PYTHON" -c "import json,sys; r=json.loads(sys.stdin.read()); r.update(start='coco_ssd', size=416, form='$model'); print(json.dumps(r))" >> "$out"
  done
  "$PYTHON" "$HERE/opencv_check.py" "$F/yolo416_nms0.onnx" "$F/yolo416.pb" "$WORK/voc" \
    | tail -1 > "$HERE/opencv_check.json"
  photos=$(sed -n '1,4p' "$WORK/voc/ImageSets/Main/test.txt" | sed "s|^|$WORK/voc/JPEGImages/|; s|$|.jpg|")
  "$PYTHON" predict.py "$WORK/frozen/yolo416.pb" $photos --output_dir "$WORK/drawn" > /dev/null
  "$PYTHON" "$HERE/contact_sheet.py" "$WORK/drawn" "$HERE/predictions.jpg"
fi
