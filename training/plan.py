"""One plan per run: the flags, the preset, the machine's choices and the data's facts, settled
once, before the graph is built, and read (never added to) by everything below.

train.py settles the flags and the machine before TensorFlow is imported
(preflight.cpu_kernels.settle: kernels, 1x1 formulation, towers, workers, each worker's
batch); `resolve` adds what only the data can tell (classes, split sizes, steps per epoch, the
split scored, how TFRecord shards are dealt between workers, one machine's replicas) and
freezes the lot. The plan is what config.json saves.
"""
import collections.abc
import hashlib
import json
import types

from datasets import decoding
from distribution import strategies
from training import checks


class Plan(collections.abc.Mapping):
    """A run's settings, read like the config dict they replace and not writable: a choice made
    here is the one every layer uses."""

    def __init__(self, values):
        self._values = types.MappingProxyType(dict(values))

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return 'Plan(%r)' % dict(self._values)

    def saved(self):
        """What config.json keeps: the run's settings, without this process's place in it."""
        return {k: v for k, v in self._values.items() if k not in ('chief', 'worker_index')}

    def shared(self):
        """What every worker of a cluster must share: the saved settings but each machine's own
        choices and paths, the class names as their count and a digest."""
        # The classes without training images follow from the names and splits compared.
        shared = {k: v for k, v in self.saved().items()
                  if k not in MACHINE_KEYS and k != 'classes_not_trained'}
        names = json.dumps(shared.pop('label_names')).encode('utf-8')
        shared['classes'] = '%d, digest %s' % (len(self['label_names']),
                                               hashlib.sha1(names).hexdigest()[:12])
        return shared


# Settings each machine of a cluster resolves for itself, or names its own way.
MACHINE_KEYS = ('cpu', 'onednn', 'pointwise', 'towers', 'replica_devices', 'data_dir', 'ckpt_dir',
                'cifar_archive', 'pretrain_path')


def resolve(settled, task, place=None):
    """(Plan, data) for `settled` (cpu_kernels.settle's dict), the `task` (tasks.classifier)
    and this process's place in a cluster (None: one process). UsageError or DataError for
    settings the data cannot meet; nothing is written."""
    checks.check_config(settled)
    decoding.forget_skipped_images()
    data = task.load_data(settled)
    devices = None if place else strategies.local_replicas()
    plan = Plan(dict(
        settled, **data['facts'], task=task.NAME, label_names=list(data['label_names']),
        worker_index=place.index if place else 0, chief=place is None or place.is_chief,
        replica_devices=devices or []))
    return plan, data


def describe(plan, place=None):
    """The lines that say what the run trains on and where, after the CPU line."""
    sizes, scored = plan['split_sizes'], plan['scored_split']
    lines = ['Data: %s, %d classes; %s; scored on %s' % (
        plan['dataset'], len(plan['label_names']), ', '.join(
            '%s %d images' % (split, sizes[split]) for split in ('train', 'val', 'test')
            if sizes[split]),
        'the %s split' % scored if scored else
        'nothing (no validation or test split: pass --val_size N to hold some images out)')]
    if plan['nested_images']:
        lines[0] += ('; %d of the images are in subfolders of class folders, each counted in '
                     'its class' % plan['nested_images'])
    if plan['classes_not_trained']:
        lines.append('Note: no training image of class %s (held out, or none decodes): the '
                     'model cannot learn it' % ', '.join(plan['classes_not_trained']))
    if place:
        lines.append('Worker %d of %d (%s%s): %d images of each batch of %d' % (
            place.index, place.size, place.address, ', the chief' if place.is_chief else '',
            plan['worker_batch'], plan['batch_size']))
        if plan['train_shards']:
            lines.append(describe_sharding(plan, place.index))
    elif plan['replica_devices']:
        devices = plan['replica_devices']
        lines.append('Replicas: %d devices (%s), %d images each of every batch of %d' % (
            len(devices), ', '.join(devices), plan['batch_size'] // len(devices),
            plan['batch_size']))
    return lines


def describe_sharding(plan, index):
    """The line on what worker `index` reads of streamed TFRecord shards."""
    shards, workers = plan['train_shards'], plan['workers']
    if not plan['worker_shards']:
        return ('Data: %d TFRecord shards for %d workers: each reads them all and decodes its '
                'share of every batch; write a multiple of %d shards (convert_to_tfrecord.py '
                '--shards) for each to read only its own' % (shards, workers, workers))
    own, records = plan['worker_shards'][index]
    line = 'Data: reads %d of the %d TFRecord shards (%d records), sharded by file' % (
        own, shards, records)
    steps, whole = plan['steps_per_epoch'], plan['split_sizes']['train'] // plan['batch_size']
    smallest = min(count for _, count in plan['worker_shards'])
    if steps == smallest // plan['worker_batch'] and steps < 0.99 * whole:
        line += ('; an epoch is %d steps, not %d, as the smallest worker\'s shards hold %d '
                 'records: write a multiple of %d shards of equal size for all of them'
                 % (steps, whole, smallest, workers))
    return line
