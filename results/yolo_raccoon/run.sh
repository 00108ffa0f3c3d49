#!/usr/bin/env bash
# YOLOv3 on MobileNetV1 (width 0.75) on the raccoon photos (../shared/detection/raccoon: 160
# train, 40 test), at 416, three starts with the same budget: the COCO SSD's backbone, the
# ImageNet 0.75/192 classifier's, and none; and the COCO SSD start with the other box losses
# (coco_ssd_ciou, coco_ssd_yolov3; the others use GIoU). Resumable: run it again and each run
# continues from its last checkpoint (WORK keeps the runs).
# Usage: bash run.sh [coco_ssd|imagenet|scratch|coco_ssd_ciou|coco_ssd_yolov3]...
source "$(dirname "$0")/paths.sh"

flags_of() {  # train.py's flags of a start (beside the yolo preset's)
  case $1 in
    coco_ssd) echo "--load_pretrain 1 --pretrain_path $WORK/imports/coco_ssd" ;;
    imagenet) echo "--load_pretrain 1 --pretrain_path $WORK/imports/imagenet_0.75" ;;
    scratch)  echo "--freeze_backbone_epochs 0 --freeze_batch_norm 0" ;;
    coco_ssd_ciou|coco_ssd_yolov3)
              echo "--load_pretrain 1 --pretrain_path $WORK/imports/coco_ssd --box_loss ${1#coco_ssd_}" ;;
    *) echo "run.sh: unknown start '$1' (coco_ssd, imagenet, scratch, coco_ssd_ciou, coco_ssd_yolov3)" >&2
       return 2 ;;
  esac
}
starts=("$@")
[ ${#starts[@]} -gt 0 ] || starts=(coco_ssd imagenet scratch)
for start in "${starts[@]}"; do flags_of "$start" > /dev/null; done

mkdir -p "$WORK/imports" "$WORK/runs"
[ -d "$WORK/voc" ] || "$PYTHON" "$HERE/make_voc.py" "$SHARED/detection/raccoon" "$WORK/voc"
[ -f "$WORK/imports/coco_ssd.index" ] || "$PYTHON" import_weights.py \
  "$SHARED/published/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite" "$WORK/imports/coco_ssd"
[ -f "$WORK/imports/imagenet_0.75.index" ] || "$PYTHON" import_weights.py \
  "$SHARED/published/mobilenet_v1_0.75_192_quant.tflite" "$WORK/imports/imagenet_0.75"
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u > "$HERE/cpu_flags.txt"

for start in "${starts[@]}"; do
  # The yolo preset: 416, Adam 1e-3 cosine, batch 8, 60 epochs, head alone for 5.
  "$PYTHON" train.py --preset yolo --data_dir "$WORK/voc" --width 0.75 $(flags_of "$start") \
    --ckpt_dir "$WORK/runs/${start}_416" 2>&1 | grep --line-buffered -v 'step/s' \
    | tee -a "$HERE/train_${start}_416.log"
  cp "$WORK/runs/${start}_416/metrics.jsonl" "$HERE/metrics_${start}_416.jsonl"
done
