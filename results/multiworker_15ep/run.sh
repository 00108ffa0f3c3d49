#!/usr/bin/env bash
# Issue 15's longer record: the full cifar preset (15 epochs, global batch 128) on two workers
# (one core each, taskset) against one process, seed 0, and one process with seed 1 for the
# run-to-run spread. The two one-process runs share the machine, one core each, after the pair.
# Resumable: the same command continues each run from its newest checkpoint.
# CIFAR-10 here is JPEG-decoded (quality 75): figures are close to, not equal to, the official set's.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/multiworker_15ep
tf_config() { echo "{\"cluster\": {\"worker\": [\"localhost:23500\", \"localhost:23501\"]}, \"task\": {\"type\": \"worker\", \"index\": $1}}"; }
TF_CONFIG=$(tf_config 1) taskset -c 1 .venv/bin/python train.py --epochs 15 --ckpt_dir ckpt/mw15_2 >> $out/worker1.log 2>&1 &
TF_CONFIG=$(tf_config 0) taskset -c 0 .venv/bin/python train.py --epochs 15 --ckpt_dir ckpt/mw15_2 >> $out/worker0.log 2>&1
wait
cp ckpt/mw15_2/metrics.jsonl $out/two_workers_metrics.jsonl
taskset -c 1 .venv/bin/python train.py --epochs 15 --seed 1 --ckpt_dir ckpt/mw15_1s1 >> $out/one_process_seed1.log 2>&1 &
taskset -c 0 .venv/bin/python train.py --epochs 15 --ckpt_dir ckpt/mw15_1 >> $out/one_process.log 2>&1
wait
cp ckpt/mw15_1/metrics.jsonl $out/one_process_metrics.jsonl
cp ckpt/mw15_1s1/metrics.jsonl $out/one_process_seed1_metrics.jsonl
