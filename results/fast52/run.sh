#!/usr/bin/env bash
# The command of command.txt (results/fast52): the 'fast' preset as it ships (52 epochs, 2 towers
# on 2 cores, weight averages, flip TTA every 4 epochs). About 55 minutes on 2 cores; run nothing
# else meanwhile. Writes train.log, metrics.jsonl and config.json here.
exec bash "$(dirname "$0")/../train_record.sh" fast52 --preset fast
