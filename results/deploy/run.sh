#!/usr/bin/env bash
# The deployment check (results/deploy): the 36-epoch checkpoint of results/fast (ckpt/fast)
# frozen to a .pb and two TFLite files, then each form scored on the 10,000 CIFAR-10 test images
# against a reference form, with batch-1 latency over 200 images. The commands are the first
# line of each .txt here (this folder had no script before; the checkpoint row of the record
# comes from results/fast/evaluate_ckpt.txt). Needs a checkpoint in ckpt/fast (results/fast/run.sh
# makes one with today's code, no longer the 36-epoch one of the record) and
# CIFAR-10 in cifar/.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
out=results/deploy
step() {  # file, arguments of python3
  local file=$1; shift
  echo "\$ python3 $*" > $out/$file
  $python "$@" 2>&1 | grep -v -E '^I0000|^W0000|^WARNING: All log messages' >> $out/$file
}
step freeze.txt freeze_graph.py --ckpt ckpt/fast --output frozen/mobilenet_v1.pb --tflite float32,int8
step evaluate_pb.txt evaluate.py frozen/mobilenet_v1.pb --reference ckpt/fast --latency 200 --plot results/deploy/confusion_pb.png
step evaluate_tflite.txt evaluate.py frozen/mobilenet_v1.tflite --reference ckpt/fast --latency 200
step evaluate_tflite_int8.txt evaluate.py frozen/mobilenet_v1_int8.tflite --reference frozen/mobilenet_v1.tflite --latency 200
step evaluate_opencv.txt evaluate.py opencv:frozen/mobilenet_v1.pb --reference frozen/mobilenet_v1.pb --latency 200
