"""The data of a run: its dataset loaded as train, validation and test splits (arrays held in
memory, or files streamed), the input pipeline of each, and how many steps an epoch takes.
"""
import numpy as np

import data_utils
from datasets import decoding
from datasets import factory
from datasets import sources
from pipelines import in_memory
from pipelines import streamed
from preflight.errors import UsageError


def load_data(cfg):
    """{'<split>_images', '<split>_labels' for train, val and test, 'label_names', 'facts'}:
    arrays, or for a split streamed from its files (--image_size other than 32) Files or
    Records as '<split>_images' and None labels; with --class_weights balanced,
    'class_weights' too. The facts are what a plan keeps of the data: split sizes, steps per
    epoch, the split reported and the one best/ is chosen on. UsageError for a batch the data
    cannot fill."""
    splits = factory.load(cfg['dataset'], cfg['data_dir'], cfg['val_size'], cfg['test_size'],
                          cfg['seed'], cfg['cifar_archive'])
    names = splits['label_names']
    data = dict(label_names=names)
    for split in ('train', 'val', 'test'):
        source = splits[split]
        if isinstance(source, sources.Arrays):
            data[split + '_images'], data[split + '_labels'] = source
        elif cfg['image_size'] == sources.CACHED_SIZE and sources.split_size(source):
            # Small images: decoded once, held in memory, augmented as CIFAR-10's pickles are.
            data[split + '_images'], data[split + '_labels'] = decoding.decode_into_memory(
                source, len(names), split)
        elif not sources.split_size(source):
            data[split + '_images'] = np.zeros((0,) + data_utils.IMAGE_SHAPE, np.uint8)
            data[split + '_labels'] = np.zeros(0, np.int64)
        else:
            data[split + '_images'], data[split + '_labels'] = source, None
    if not sources.split_size(data['train_images']):
        raise UsageError('--data_dir %s: no training image decodes' % cfg['data_dir'])
    if cfg['class_weights'] == 'balanced':
        data['class_weights'] = balanced_class_weights(data, len(names))
    data['facts'] = _facts(cfg, data)
    return data


def _facts(cfg, data):
    sizes = {split: split_size(data, split) for split in ('train', 'val', 'test')}
    if sizes['train'] < cfg['batch_size']:
        raise UsageError('--batch_size %d is larger than the %d training images'
                         % (cfg['batch_size'], sizes['train']))
    steps = steps_in_epoch(cfg, data)
    if not steps:
        smallest = min(map(sources.split_size, worker_shards(cfg, data)))
        raise UsageError('--batch_size %d gives each of the %d workers %d images a step, more than '
                         'the %d records of the smallest worker\'s TFRecord shards; pass '
                         '--batch_size %d or less' % (cfg['batch_size'], cfg['workers'],
                                                      cfg['worker_batch'], smallest,
                                                      smallest * cfg['workers']))
    # Reported: the test split where there is one; chosen by (best/): the validation split.
    return dict(split_sizes=sizes, steps_per_epoch=steps,
                scored_split='test' if sizes['test'] else 'val' if sizes['val'] else None,
                best_on='val' if sizes['val'] else 'test' if sizes['test'] else None)


def balanced_class_weights(data, num_classes):
    """scikit-learn's 'balanced' weights of the training split: images / (classes x images of
    the class), so that every class weighs the same in the loss; a class without images, 0."""
    counts = decoding.class_counts(data['train_images'], data['train_labels'], num_classes)
    return np.divide(counts.sum(), num_classes * counts, out=np.zeros(num_classes),
                     where=counts > 0)


def split_size(data, split):
    """Images in a split of load_data's dict (those of a streamed split as listed)."""
    return sources.split_size(data[split + '_images'])


def input_pipeline(cfg, data, split, num_classes, training, worker=(0, 1)):
    """(images, labels, initializer, feed) of a split: pipelines/in_memory.py for arrays,
    pipelines/streamed.py for a streamed split. In training, `worker` (index, count)
    takes that worker's slice of each global batch of --batch_size."""
    images = data[split + '_images']
    batch_size = cfg['batch_size'] if training else cfg['eval_batch_size']
    if isinstance(images, (sources.Files, sources.Records)):
        return streamed.input_pipeline(images, num_classes, batch_size, training,
                                       cfg['image_size'], seed=cfg['seed'],
                                       augment=cfg['augment'], worker=worker)
    return in_memory.input_pipeline(
        images, data[split + '_labels'], batch_size, training=training, augment=cfg['augment'],
        image_size=cfg['image_size'], seed=cfg['seed'], cutout=cfg['cutout'], worker=worker)


def steps_in_epoch(cfg, data):
    """--steps_per_epoch, or one pass over the training set; of TFRecords sharded by file
    between workers, one pass over the smallest worker's shards, so that all step in lockstep."""
    if cfg['steps_per_epoch']:
        return cfg['steps_per_epoch']
    shards = worker_shards(cfg, data)
    if shards:
        return min(sources.split_size(own) for own in shards) // cfg['worker_batch']
    return split_size(data, 'train') // cfg['batch_size']


def worker_shards(cfg, data):
    """streamed.worker_shards of a streamed TFRecord training split, else None."""
    train = data['train_images']
    if not isinstance(train, sources.Records):
        return None
    return streamed.worker_shards(train, cfg['workers'])


def describe_sharding(plan, data, index):
    """A line on what worker `index` reads of streamed TFRecords, or None for other data."""
    train = data['train_images']
    if not isinstance(train, sources.Records):
        return None
    shards = worker_shards(plan, data)
    if not shards:
        return ('Data: %d TFRecord shards for %d workers: each reads them all and decodes its '
                'share of every batch; write a multiple of %d shards (convert_to_tfrecord.py '
                '--shards) for each to read only its own' % (len(train.shards), plan['workers'],
                                                             plan['workers']))
    line = 'Data: reads %d of the %d TFRecord shards (%d records), sharded by file' % (
        len(shards[index].shards), len(train.shards), sources.split_size(shards[index]))
    steps, whole = plan['steps_per_epoch'], split_size(data, 'train') // plan['batch_size']
    smallest = min(map(sources.split_size, shards))
    if steps == smallest // plan['worker_batch'] and steps < 0.99 * whole:
        line += ('; an epoch is %d steps, not %d, as the smallest worker\'s shards hold %d '
                 'records: write a multiple of %d shards of equal size for all of them'
                 % (steps, whole, smallest, plan['workers']))
    return line
