"""The data of a run: its dataset loaded as train, validation and test splits (arrays held in
memory, or files streamed), the facts a plan keeps of them (sizes, steps per epoch, how TFRecord
shards are dealt between workers), counted once here, and the input pipeline of each split.
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
    'class_weights' too. The facts are what a plan keeps of the data (facts()). UsageError for
    data without a training image, or a batch it cannot fill."""
    splits = factory.load(cfg['dataset'], cfg['data_dir'], cfg['val_size'], cfg['test_size'],
                          cfg['seed'], cfg['cifar_archive'])
    names = splits['label_names']
    data = dict(label_names=names, nested_images=splits.get('nested', 0),
                held_out=splits.get('held_out'))
    for split in ('train', 'val', 'test'):
        source = splits[split]
        if isinstance(source, sources.Arrays):
            data[split + '_images'], data[split + '_labels'] = source
        elif cfg['image_size'] == sources.CACHED_SIZE and source.num_images:
            # Small images: decoded once, held in memory, augmented as CIFAR-10's pickles are.
            data[split + '_images'], data[split + '_labels'] = decoding.decode_into_memory(
                source, len(names), split)
        elif not source.num_images:
            data[split + '_images'] = np.zeros((0,) + data_utils.IMAGE_SHAPE, np.uint8)
            data[split + '_labels'] = np.zeros(0, np.int64)
        else:
            data[split + '_images'], data[split + '_labels'] = source, None
    if cfg['class_weights'] == 'balanced':
        counts = decoding.class_counts(data['train_images'], data['train_labels'], len(names))
        data['class_weights'] = balanced_class_weights(counts)
    data['facts'] = facts(cfg, data)
    return data


def balanced_class_weights(counts):
    """scikit-learn's 'balanced' weights of the training split's images of each class (`counts`):
    images / (classes x images of the class), so that every class weighs the same in the loss;
    a class without images, 0."""
    return np.divide(counts.sum(), len(counts) * counts, out=np.zeros(len(counts)),
                     where=counts > 0)


def split_size(data, split):
    """Images in a split of load_data's dict (those of a streamed split as listed)."""
    images = data[split + '_images']
    return len(images) if data[split + '_labels'] is not None else images.num_images


def facts(cfg, data):
    """What a plan keeps of load_data's `data` for the settled `cfg`: the size of each split,
    the steps of an epoch, the split reported (the test split where there is one) and the one
    best/ is chosen on (the validation split), and how streamed TFRecords are dealt between
    workers (train_shards: how many there are, 0 for other data; worker_shards: [shards,
    records] of each worker where each reads its own, else None), how many images of a
    folder dataset are in subfolders of class folders, the classes without a training image
    (held out, or not decoding), and the digest of the held-out images a folder's
    --val_size/--test_size carved (image_folder.held_out_digest). UsageError for data without
    a training image, or a batch it cannot fill."""
    sizes = {split: split_size(data, split) for split in ('train', 'val', 'test')}
    if not sizes['train']:
        raise UsageError('--data_dir %s: no training image decodes' % cfg['data_dir'])
    if sizes['train'] < cfg['batch_size']:
        raise UsageError('--batch_size %d is larger than the %d training images'
                         % (cfg['batch_size'], sizes['train']))
    train = data['train_images']
    streamed_records = isinstance(train, sources.Records)
    own = streamed_records and streamed.worker_shards(train, cfg['workers'])
    worker_shards = [[len(shards.shards), shards.num_images] for shards in own] if own else None
    # Workers reading their own shards step in lockstep: one pass over the smallest's.
    smallest = min(records for _, records in worker_shards) if worker_shards else None
    steps = cfg['steps_per_epoch'] or (smallest // cfg['worker_batch'] if worker_shards
                                       else sizes['train'] // cfg['batch_size'])
    if not steps:
        raise UsageError('--batch_size %d gives each of the %d workers %d images a step, more than '
                         'the %d records of the smallest worker\'s TFRecord shards; pass '
                         '--batch_size %d or less' % (cfg['batch_size'], cfg['workers'],
                                                      cfg['worker_batch'], smallest,
                                                      smallest * cfg['workers']))
    labels = data['train_labels'] if data['train_labels'] is not None else getattr(
        train, 'labels', None)  # a Records split's are in its shards, not read here
    unlearned = [] if labels is None else [
        data['label_names'][i] for i in np.flatnonzero(
            np.bincount(labels, minlength=len(data['label_names'])) == 0)]
    return dict(split_sizes=sizes, steps_per_epoch=steps, classes_not_trained=unlearned,
                held_out=data.get('held_out'),
                scored_split='test' if sizes['test'] else 'val' if sizes['val'] else None,
                best_on='val' if sizes['val'] else 'test' if sizes['test'] else None,
                train_shards=len(train.shards) if streamed_records else 0,
                worker_shards=worker_shards, nested_images=data.get('nested_images', 0))


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
