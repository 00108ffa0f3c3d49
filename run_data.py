"""The data of a run: its dataset loaded as train, validation and test splits (arrays held in
memory, or files streamed), the input pipeline of each, and how many steps an epoch takes.
"""
import numpy as np

import data_utils
import datasets
import image_pipeline
from cli import UsageError


def load_data(cfg):
    """{'<split>_images', '<split>_labels' for train, val and test, 'label_names'}: arrays, or
    for a streamed split (datasets.py) Files or Records as '<split>_images' and None labels;
    with --class_weights balanced, 'class_weights' too."""
    data = _load_own_data(cfg) if cfg['dataset'] != 'cifar10' else _load_cifar10(cfg)
    if cfg['class_weights'] == 'balanced':
        data['class_weights'] = balanced_class_weights(data, len(data['label_names']))
    return data


def _load_cifar10(cfg):
    data_utils.ensure_cifar10(cfg['data_dir'], archive=cfg['cifar_archive'] or None)
    data = data_utils.load_cifar10(cfg['data_dir'])
    if cfg['val_size'] >= len(data['train_labels']):
        raise UsageError('--val_size %d leaves no training images (there are %d)'
                         % (cfg['val_size'], len(data['train_labels'])))
    (data['train_images'], data['train_labels'],
     data['val_images'], data['val_labels']) = data_utils.split_validation(
        data['train_images'], data['train_labels'], cfg['val_size'], seed=cfg['seed'])
    return data


def _load_own_data(cfg):
    if cfg['dataset'] == 'folder':
        splits = datasets.load_folder(cfg['data_dir'], cfg['val_size'], cfg['test_size'],
                                      cfg['seed'])
    else:
        splits = datasets.load_tfrecord(cfg['data_dir'])
    names = splits['label_names']
    data = dict(label_names=names)
    for split in ('train', 'val', 'test'):
        source = splits[split]
        if cfg['image_size'] == datasets.CACHED_SIZE and datasets.split_size(source):
            # Small images: decoded once, held in memory, augmented as CIFAR-10's pickles are.
            data[split + '_images'], data[split + '_labels'] = datasets.decode_into_memory(
                source, len(names), split)
        elif not datasets.split_size(source):
            data[split + '_images'] = np.zeros((0,) + data_utils.IMAGE_SHAPE, np.uint8)
            data[split + '_labels'] = np.zeros(0, np.int64)
        else:
            data[split + '_images'], data[split + '_labels'] = source, None
    if not datasets.split_size(data['train_images']):
        raise UsageError('--data_dir %s: no training image decodes' % cfg['data_dir'])
    return data


def balanced_class_weights(data, num_classes):
    """scikit-learn's 'balanced' weights of the training split: images / (classes x images of
    the class), so that every class weighs the same in the loss; a class without images, 0."""
    counts = datasets.class_counts(data['train_images'], data['train_labels'], num_classes)
    return np.divide(counts.sum(), num_classes * counts, out=np.zeros(num_classes),
                     where=counts > 0)


def split_size(data, split):
    """Images in a split of load_data's dict (those of a streamed split as listed)."""
    return datasets.split_size(data[split + '_images'])


def input_pipeline(cfg, data, split, num_classes, training, worker=(0, 1)):
    """(images, labels, initializer, feed) of a split: data_utils.input_pipeline for arrays,
    image_pipeline.input_pipeline for a streamed split. In training, `worker` (index, count)
    takes that worker's slice of each global batch of --batch_size."""
    images = data[split + '_images']
    batch_size = cfg['batch_size'] if training else cfg['eval_batch_size']
    if isinstance(images, (datasets.Files, datasets.Records)):
        return image_pipeline.input_pipeline(images, num_classes, batch_size, training,
                                             cfg['image_size'], seed=cfg['seed'],
                                             augment=cfg['augment'], worker=worker)
    return data_utils.input_pipeline(
        images, data[split + '_labels'], batch_size, training=training, augment=cfg['augment'],
        image_size=cfg['image_size'], seed=cfg['seed'], cutout=cfg['cutout'], worker=worker)


def steps_in_epoch(cfg, data):
    """--steps_per_epoch, or one pass over the training set; of TFRecords sharded by file
    between workers, one pass over the smallest worker's shards, so that all step in lockstep."""
    if cfg['steps_per_epoch']:
        return cfg['steps_per_epoch']
    shards = worker_shards(cfg, data)
    if shards:
        return min(datasets.split_size(own) for own in shards) // worker_batch(cfg)
    return split_size(data, 'train') // cfg['batch_size']


def worker_shards(cfg, data):
    """image_pipeline.worker_shards of a streamed TFRecord training split, else None."""
    train = data['train_images']
    if not isinstance(train, datasets.Records):
        return None
    return image_pipeline.worker_shards(train, cfg.get('workers', 1))


def worker_batch(cfg):
    """The images of a step each worker takes: --batch_size is the global batch."""
    return cfg['batch_size'] // cfg.get('workers', 1)


def describe_sharding(cfg, data, index):
    """A line on what worker `index` reads of streamed TFRecords, or None for other data."""
    train = data['train_images']
    if not isinstance(train, datasets.Records):
        return None
    shards = worker_shards(cfg, data)
    if not shards:
        return ('Data: %d TFRecord shards for %d workers: each reads them all and decodes its '
                'share of every batch; write a multiple of %d shards (convert_to_tfrecord.py '
                '--shards) for each to read only its own' % (len(train.shards), cfg['workers'],
                                                             cfg['workers']))
    line = 'Data: reads %d of the %d TFRecord shards (%d records), sharded by file' % (
        len(shards[index].shards), len(train.shards), datasets.split_size(shards[index]))
    steps, whole = steps_in_epoch(cfg, data), split_size(data, 'train') // cfg['batch_size']
    if not cfg['steps_per_epoch'] and steps < 0.99 * whole:
        line += ('; an epoch is %d steps, not %d, as the smallest worker\'s shards hold %d '
                 'records: write a multiple of %d shards of equal size for all of them'
                 % (steps, whole, min(map(datasets.split_size, shards)), cfg['workers']))
    return line
