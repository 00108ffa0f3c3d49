"""Checks of a run's settings that would otherwise fail deep inside TensorFlow, or train on NaN."""
import glob
import math
import os

from checkpoints import reading
import config
import data_utils
from datasets import sources
import mobilenet
from preflight import cpu_kernels
from preflight.errors import UsageError


def check_architecture(cfg):
    """The architecture values (those a frozen model keeps), checked before building the graph."""
    for key, allowed in (('stem', tuple(mobilenet.STEMS)), ('normalization', ('cifar', 'inception'))):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    for key in ('width', 'min_depth', 'image_size'):
        if not (math.isfinite(cfg[key]) and cfg[key] > 0):
            raise UsageError('--%s must be a finite number greater than 0, got %r' % (key, cfg[key]))


def check_config(cfg):
    """Catch values that would only fail deep inside TensorFlow, or train on NaN, in settled
    values (preflight.cpu_kernels.settle: towers, workers and each worker's batch known)."""
    check_architecture(cfg)
    cpu_kernels.check_flags(cfg)
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError('--%s must be a finite number, got %r' % (key, value))
    if cfg['task'] not in ('classify', 'detect'):
        raise UsageError("--task must be 'classify' or 'detect', got %r" % cfg['task'])
    datasets = config.DETECTION_DATASETS if cfg['task'] == 'detect' else \
        config.CLASSIFICATION_DATASETS
    if cfg['dataset'] not in datasets:
        raise UsageError('--dataset %s is not a %s dataset; pass one of %s' % (
            cfg['dataset'], 'detection' if cfg['task'] == 'detect' else 'classification',
            ', '.join(datasets)))
    if cfg['task'] == 'detect':
        check_detection(cfg)
    for key, allowed in (('class_weights', ('', 'balanced')),
                         ('optimizer', ('adam', 'momentum', 'nesterov')),
                         ('lr_schedule', ('exponential', 'step', 'cosine', 'linear'))):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    for key in ('lr', 'batch_size', 'epochs', 'eval_batch_size', 'keep_checkpoints',
                'worker_timeout',
                'lr_step_epochs', 'eval_every', 'lr_decay', 'lr_step_factor', 'batch_norm_epsilon'):
        if not cfg[key] > 0:
            raise UsageError('--%s must be greater than 0, got %r' % (key, cfg[key]))
    for key in ('steps_per_epoch', 'val_size', 'test_size', 'warmup_epochs', 'weight_decay',
                'init_stddev'):
        if cfg[key] < 0:
            raise UsageError('--%s must be 0 or more, got %r' % (key, cfg[key]))
    for key in ('momentum', 'batch_norm_decay', 'ema_decay', 'label_smoothing'):
        if not 0 <= cfg[key] < 1:
            raise UsageError('--%s must be in [0, 1), got %r' % (key, cfg[key]))
    workers = cfg['workers']
    if cfg['batch_size'] % workers:
        raise UsageError('--batch_size %d (the global batch) is not a multiple of the %d workers '
                         'TF_CONFIG lists: each takes an equal share' % (cfg['batch_size'], workers))
    if cfg['worker_batch'] % cfg['towers']:
        raise UsageError('--batch_size %d%s is not a multiple of --towers %d: each tower takes an '
                         'equal share' % (cfg['batch_size'], ' (%d a worker)' % cfg['worker_batch']
                                          if workers > 1 else '', cfg['towers']))
    side = data_utils.IMAGE_SHAPE[0]
    if not 0 <= cfg['cutout'] <= side:
        raise UsageError('--cutout must be a side in pixels from 0 (off) to %d, got %r'
                         % (side, cfg['cutout']))
    if cfg['cutout'] and cfg['dataset'] != 'cifar10' and cfg['image_size'] != sources.CACHED_SIZE:
        raise UsageError('--cutout applies to 32x32 images; at --image_size %d own images get '
                         "slim's inception crop instead: pass --cutout 0" % cfg['image_size'])
    if cfg['dataset'] == 'tfrecord' and (cfg['val_size'] or cfg['test_size']):
        raise UsageError('--val_size and --test_size carve splits of a folder dataset; TFRecords '
                         'bring their own (shards named *validation*, *test*)')
    if cfg['test_size'] and cfg['dataset'] == 'cifar10':
        raise UsageError('--test_size carves a test split from a folder dataset; CIFAR-10 has its '
                         'own test_batch')
    if cfg['checkpoint_exclude_scopes'] and not cfg['load_pretrain']:
        raise UsageError('--checkpoint_exclude_scopes applies to --load_pretrain 1 (what is not '
                         'restored from --pretrain_path); pass both, or neither')
    if cfg['cutout'] and not cfg['augment']:
        raise UsageError('--cutout %d needs --augment 1 (cutout is part of the augmentation)'
                         % cfg['cutout'])
    if not 0 < cfg['dropout_keep_prob'] <= 1:
        raise UsageError('--dropout_keep_prob must be in (0, 1], got %r' % cfg['dropout_keep_prob'])
    if not 0 <= cfg['seed'] < 2 ** 32:  # numpy's RandomState takes no other
        raise UsageError('--seed must be from 0 to %d, got %d' % (2 ** 32 - 1, cfg['seed']))
    if cfg['load_pretrain'] and not cfg['pretrain_path']:
        raise UsageError('--load_pretrain 1 needs --pretrain_path (a checkpoint prefix or folder)')
    check_pretrain_path(cfg)


def check_detection(cfg):
    """--task detect's own settings, and the classifier's that mean nothing to it."""
    from detection import loss
    from detection import yolo_v3
    for key, allowed in (('head', yolo_v3.HEADS), ('box_loss', loss.BOX_LOSSES)):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    conv_defs = mobilenet.STEMS[cfg['stem']]
    names = mobilenet.end_point_names(conv_defs)
    ends = [name.strip() for name in cfg['detect_end_points'].split(',') if name.strip()]
    if len(ends) < 1 or any(name not in names for name in ends) or len(set(ends)) < len(ends):
        raise UsageError('--detect_end_points must name end points of MobilenetV1 each once, '
                         'finest first, e.g. %s; got %r' % (','.join(mobilenet.DETECTION_END_POINTS),
                                                           cfg['detect_end_points']))
    strides = mobilenet.end_point_strides(conv_defs)
    steps = [strides[name] for name in ends]
    if any(b != 2 * a for a, b in zip(steps, steps[1:])):
        raise UsageError('--detect_end_points %s have strides %s; each must be twice the one '
                         'before (the head upsamples x2 between them), e.g. %s' % (
                             cfg['detect_end_points'], ', '.join(map(str, steps)),
                             ','.join(mobilenet.DETECTION_END_POINTS)))
    deepest = steps[-1]
    if cfg['multi_scale']:
        try:
            low, high = (int(v) for v in cfg['multi_scale'].split(','))
            if not 0 < low <= high or low % deepest or high % deepest:
                raise ValueError
        except ValueError:
            raise UsageError("--multi_scale must be 'MIN,MAX', multiples of %d with MIN <= MAX "
                             "(e.g. 320,608), got %r" % (deepest, cfg['multi_scale'])) from None
    if cfg['image_size'] % deepest:
        raise UsageError('--image_size %d: the detector takes multiples of %d (its deepest '
                         'stride), e.g. %d' % (cfg['image_size'], deepest,
                                               max(deepest, round(cfg['image_size'] / deepest)
                                                   * deepest)))
    for key in ('head_depth', 'max_boxes', 'max_detections'):
        if cfg[key] < 1:
            raise UsageError('--%s must be 1 or more, got %r' % (key, cfg[key]))
    for key in ('ignore_threshold', 'iou_threshold', 'score_threshold'):
        if not 0 <= cfg[key] <= 1:
            raise UsageError('--%s must be in [0, 1], got %r' % (key, cfg[key]))
    if cfg['towers'] not in ('auto', 1):
        raise UsageError('--towers %s: the detector steps whole; pass --towers auto or 1'
                         % cfg['towers'])
    for key, off in (('cutout', 0), ('class_weights', ''), ('eval_flip_tta', False)):
        if cfg[key] != off:
            raise UsageError('--%s applies to the classifier; pass --%s %s with --task detect'
                             % (key, key, {False: 0, '': "''"}.get(off, off)))
    if cfg['freeze_backbone_epochs'] < 0:
        raise UsageError('--freeze_backbone_epochs must be 0 or more, got %r'
                         % cfg['freeze_backbone_epochs'])


def check_pretrain_path(cfg):
    """Before the data loads: a --pretrain_path that is no file or folder at all, for a run
    that will start from it (one with checkpoints resumes, and ignores it). What is there is
    read, and refused if damaged, when the weights are restored."""
    path = cfg['pretrain_path']
    if not cfg['load_pretrain'] or glob.glob(os.path.join(glob.escape(cfg['ckpt_dir']),
                                                          '*.index')):
        return
    prefix = reading.FILE_SUFFIX.sub('', path)
    if not (os.path.isdir(path) or os.path.exists(prefix + '.index')
            or path.endswith(('.pb', '.tflite')) and os.path.isfile(path)):
        # The newest checkpoint the path is the start of (model.ckpt-10 after model.ckpt-9).
        near = [p[:-len('.index')] for p in glob.glob(glob.escape(prefix) + '*.index')]
        raise UsageError('--pretrain_path %s: no such checkpoint (a prefix with its .index file, '
                         'or a folder of checkpoints)%s' % (path, '; did you mean %s?' % max(
                             near, key=lambda p: (len(p), p)) if near else ''))
