"""Train MobileNetV1 on CIFAR-10 or your own images in TF1 graph mode.

    python3 train.py                                   # recommended recipe (config.py's 'cifar')
    python3 train.py --lr 1e-3 --batch_size 16 --epochs 20 --load_pretrain 0
    python3 train.py --load_pretrain 1 --pretrain_path mobilenet_v1_1.0_224.ckpt \
        --normalization inception --ckpt_dir ckpt/finetune
    python3 train.py --dataset folder --data_dir photos/ --image_size 224 --stem imagenet

Running the same command again resumes from the latest checkpoint in --ckpt_dir.
Every value in config.py is a flag; see --help. The last line printed is a JSON
summary of the run.
"""
import json
import os
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cli
import cpu_kernels


def _terminate(signum, frame):
    raise cli.Terminated


def main(argv=None):
    cfg = cli.parse_config(argv, description=__doc__)
    try:
        cfg, kernels = cpu_kernels.settle(cfg)
    except cli.UsageError as e:
        print('train.py: error: %s' % e, file=sys.stderr)
        return 2
    print(kernels, flush=True)
    # Only now: TensorFlow picks its CPU kernels when it is imported.
    import data_utils
    import trainer
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = trainer.train(cfg)
    except (cli.UsageError, data_utils.DataError, FloatingPointError) as e:
        print('train.py: error: %s' % e, file=sys.stderr)
        return 2 if not isinstance(e, FloatingPointError) else 1
    except KeyboardInterrupt as e:
        # The shell's codes: 128 + the signal's number.
        return 128 + (signal.SIGTERM if isinstance(e, cli.Terminated) else signal.SIGINT)
    finally:
        # Called from other code (tests, a notebook), a later SIGTERM is theirs again. None: a
        # handler set outside Python, which cannot be put back; the default is the nearest.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
