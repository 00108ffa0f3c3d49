"""Train MobileNetV1 on CIFAR-10 or your own images in TF1 graph mode.

    python3 train.py                                   # recommended recipe (config.py's 'cifar')
    python3 train.py --lr 1e-3 --batch_size 16 --epochs 20 --load_pretrain 0
    python3 train.py --load_pretrain 1 --pretrain_path mobilenet_v1_1.0_224.ckpt \
        --normalization inception --ckpt_dir ckpt/finetune
    python3 train.py --dataset folder --data_dir photos/ --image_size 224 --stem imagenet

Running the same command again resumes from the latest checkpoint in --ckpt_dir.
With TF_CONFIG set, this process is one worker of a data-parallel cluster (README:
"Training on several machines"); --batch_size is then the global batch.
Every value in config.py is a flag; see --help. The last line printed is a JSON
summary of the run.
"""
import json
import os
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cli
import cluster
import cpu_kernels


def _terminate(signum, frame):
    raise cli.Terminated


def main(argv=None):
    cfg = cli.parse_config(argv, description=__doc__)
    try:
        place = cluster.from_environment(os.environ)
        if place:
            cfg['workers'] = place.size
        cfg, kernels = cpu_kernels.settle(cfg)
    except cli.UsageError as e:
        print('train.py: error: %s' % e, file=sys.stderr)
        return 2
    print(kernels, flush=True)
    # Only now: TensorFlow picks its CPU kernels when it is imported.
    import data_utils
    import distributed
    import trainer
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = trainer.train(cfg, place)
    except (cli.UsageError, data_utils.DataError, FloatingPointError,
            distributed.LostWorker) as e:
        print('train.py: error: %s' % e, file=sys.stderr)
        # A lost peer at start-up is a cluster to set up (2); in a step, a failure (1).
        starting = isinstance(e, distributed.LostWorker) and e.starting
        return 2 if isinstance(e, cli.UsageError) or starting or isinstance(
            e, data_utils.DataError) else 1
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
