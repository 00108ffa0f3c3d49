"""Train MobileNetV1 on CIFAR-10 or your own images in TF1 graph mode.

    python3 train.py                                   # recommended recipe (config.py's 'cifar')
    python3 train.py --lr 1e-3 --batch_size 16 --epochs 20 --load_pretrain 0
    python3 train.py --load_pretrain 1 --pretrain_path mobilenet_v1_1.0_224.ckpt \
        --normalization inception --ckpt_dir runs/finetune
    python3 train.py --dataset folder --data_dir photos/ --image_size 224 --stem imagenet
    python3 train.py --task detect --dataset voc --data_dir VOCdevkit/VOC2007 \
        --load_pretrain 1 --pretrain_path imported/ssd --ckpt_dir runs/yolo   # YOLOv3

Running the same command again resumes from the latest checkpoint in --ckpt_dir.
With TF_CONFIG set, this process is one worker of a data-parallel cluster (README:
"Training on several machines"); --batch_size is then the global batch.
Every value in config.py is a flag; see --help. The last line printed is a JSON
summary of the run.
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from preflight import cluster
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors


def main(argv=None):
    flags = command_line.parse_config(argv, description=__doc__)
    return errors.run_program('train.py', lambda: train(flags), terminate=True)


def train(flags):
    place = cluster.from_environment(os.environ)
    settled, kernels = cpu_kernels.settle(flags, workers=place.size if place else 1)
    print(kernels, flush=True)
    # Only now: TensorFlow picks its CPU kernels when it is imported.
    cpu_kernels.import_tensorflow()
    from checkpoints import run_files
    from tasks import factory
    from training import plan as run_plan
    from training import trainer
    task = factory.task(settled['task'])
    with run_files.run_folder(settled['ckpt_dir'], chief=place is None or place.is_chief):
        plan, data = run_plan.resolve(settled, task, place)
        for line in run_plan.describe(plan, place):
            print(line, flush=True)
        summary = trainer.train(plan, data, task, place)
    print(json.dumps(summary))


if __name__ == '__main__':
    sys.exit(main())
