"""A dataset by name, as TF-Slim's dataset_factory: 'cifar10', 'folder' or 'tfrecord'.

Every program that reads data (train.py, evaluate.py, freeze_graph.py's calibration,
benchmark.py) gets its splits here, so the choice between the loaders is written once.
"""
import os

import config
import data_utils
from datasets import image_folder
from datasets import sources
from datasets import tfrecords
from preflight.errors import UsageError


def load(name, data_dir, val_size=0, test_size=0, seed=0, cifar_archive=None, test_only=False):
    """{'train', 'val', 'test': the split, 'label_names'} (and for a folder, 'nested': its images
    in subfolders of class folders): CIFAR-10's splits as sources.Arrays
    (downloaded first if need be, `val_size` training images held out, seeded), a folder's
    as sources.Files (`val_size` and `test_size` carved where it has no folders for them),
    TFRecords' as sources.Records. `test_only`: CIFAR-10's training batches are not read, and
    its train and val splits are empty. DataError for data that is missing or bad."""
    if name == 'folder':
        return image_folder.load_folder(data_dir, val_size, test_size, seed)
    if name == 'tfrecord':
        return tfrecords.load_tfrecord(data_dir)
    if name != 'cifar10':
        raise UsageError('--dataset must be one of %s, got %r'
                         % (', '.join(config.CLASSIFICATION_DATASETS), name))
    data_utils.ensure_cifar10(data_dir, archive=cifar_archive or None)
    if test_only:
        test = data_utils.load_batch(os.path.join(data_dir, data_utils.TEST_FILE))
        nothing = sources.Arrays(test[0][:0], test[1][:0])
        return dict(train=nothing, val=nothing, test=sources.Arrays(*test),
                    label_names=data_utils.load_label_names(data_dir))
    data = data_utils.load_cifar10(data_dir)
    if val_size >= len(data['train_labels']):
        raise UsageError('--val_size %d leaves no training images (there are %d)'
                         % (val_size, len(data['train_labels'])))
    train_images, train_labels, val_images, val_labels = data_utils.split_validation(
        data['train_images'], data['train_labels'], val_size, seed=seed)
    return dict(train=sources.Arrays(train_images, train_labels),
                val=sources.Arrays(val_images, val_labels),
                test=sources.Arrays(data['test_images'], data['test_labels']),
                label_names=data['label_names'])
