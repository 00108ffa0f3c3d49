#!/usr/bin/env bash
# Issue 13's record (1): CIFAR-10 read from its folder layout against the same images read from
# the pickles, the cifar preset shortened to 15 epochs (its schedule scaled: warm-up, then
# linear decay to 0 at epoch 15) on each. The two run side by side, each pinned to a core of
# its own (so each trains in one tower, with one thread), under the same load. The recorded
# folder run (folder.*) was made again from nothing with the same command alone on core 1
# (core 0 running the tests): first_attempt/README.md says why.
# Both come from ../shared/cifar10: the folders are its JPEGs (train/<class>/*.jpg,
# test/<class>/*.jpg), the pickles its make_cifar10.py's decoding of the same files, so the
# two runs see the same pixels; these are JPEG-decoded (quality 75), close to but not the
# official set's. Each run resumes where it stopped if this script is run again.
# Usage: bash results/cifar_folder/run.sh (from the repository root; about 70 minutes on 2 cores)
set -euo pipefail
python=${PYTHON:-python3}
out=results/cifar_folder
jpeg=${CIFAR_JPEG:-../cifar10-jpeg}
[ -d "$jpeg/train" ] || { mkdir -p "$jpeg"; tar -xJf ../shared/cifar10/cifar10-jpeg.tar.xz -C "$jpeg"; }
[ -f cifar/test_batch ] || $python ../shared/cifar10/make_cifar10.py cifar/
run() {  # name, core, flags
  local name=$1 core=$2; shift 2
  echo "\$ taskset -c $core python3 train.py --preset cifar --epochs 15 $* --ckpt_dir ckpt/cifar_$name" >> $out/$name.log
  taskset -c "$core" $python train.py --preset cifar --epochs 15 "$@" --ckpt_dir "ckpt/cifar_$name" 2>/dev/null >> $out/$name.log
  cp "ckpt/cifar_$name/metrics.jsonl" $out/$name.metrics.jsonl
  cp "ckpt/cifar_$name/config.json" $out/$name.config.json
}
run pickle 0 --dataset cifar10 --data_dir cifar &
run folder 1 --dataset folder --data_dir "$jpeg" &
wait
