#!/usr/bin/env bash
# The command of command.txt (results/cifar_15ep): the 'cifar' preset shortened to 15 epochs.
# The record sent SIGTERM during epoch 3 and ran the same command again (it resumed), then
# stopped for good after epoch 7; run this again after an interrupt to resume the same way.
exec bash "$(dirname "$0")/../train_record.sh" cifar_15ep --preset cifar --epochs 15
