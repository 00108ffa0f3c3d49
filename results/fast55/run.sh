#!/usr/bin/env bash
# The command of command.txt (results/fast55): the 'fast' preset stretched to 55 epochs, scored
# every 11. About an hour on 2 cores; run nothing else meanwhile.
exec bash "$(dirname "$0")/../train_record.sh" fast55 --preset fast --epochs 55 --eval_every 11
