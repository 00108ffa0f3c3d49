#!/usr/bin/env bash
# The command of command.txt (results/best): the 'best' preset, 200 epochs (about 3.5 hours on
# 2 cores). Resumable: run this again after an interrupt and it continues from the newest
# checkpoint in ckpt/best, appending to train.log (git-ignored; train_snapshot.log is the record's).
exec bash "$(dirname "$0")/../train_record.sh" best --preset best
