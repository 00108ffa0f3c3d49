#!/usr/bin/env bash
# Same recipe twice on CIFAR-10 (3 short epochs of 80 steps): A straight through; B killed (SIGTERM)
# 40 s in, then resumed by running the same command again. Run from the repository root.
set -u
flags="--preset cifar --epochs 3 --steps_per_epoch 80 --warmup_epochs 0.5 --batch_norm_decay 0.9"
python3 train.py $flags --ckpt_dir ckpt/demo_a > results/resume_demo/a.log 2>/dev/null
python3 train.py $flags --ckpt_dir ckpt/demo_b > results/resume_demo/b.log 2>/dev/null &
sleep 40; kill -TERM $!; wait $!
echo "exit code after SIGTERM: $?" >> results/resume_demo/b.log
python3 train.py $flags --ckpt_dir ckpt/demo_b >> results/resume_demo/b.log 2>/dev/null
