"""Train MobileNetV1 on CIFAR-10 in TF1 graph mode.

    python3 train.py                                   # recommended recipe (config.py's 'cifar')
    python3 train.py --lr 1e-3 --batch_size 16 --epochs 20 --load_pretrain 0
    python3 train.py --load_pretrain 1 --pretrain_path mobilenet_v1_1.0_224.ckpt \
        --normalization inception --ckpt_dir ckpt/finetune

Running the same command again resumes from the latest checkpoint in --ckpt_dir.
Every value in config.py is a flag; see --help. The last line printed is a JSON
summary of the run.
"""
import argparse
import json
import math
import os
import signal
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2
from tqdm import tqdm

import checkpoints
import config
import data_utils
import mobilenet

v1 = tf.compat.v1
tf.get_logger().setLevel('ERROR')  # Saver's deprecation notices are not the user's business

# Variables that make a checkpoint a resumable run rather than just weights.
STATE_SCOPE = 'train_state'
# Values a resumed run must keep: they change the variables, what the model computes, or
# which images an epoch holds. The optimizer's family and weight averaging are checked too.
RESUME_KEYS = ('width', 'min_depth', 'stem', 'use_explicit_padding', 'normalization', 'image_size',
               'val_size', 'seed', 'batch_size', 'steps_per_epoch', 'mixed_precision')


class UsageError(Exception):
    """A bad flag or path: str(e) is the one line shown to the user."""


def parse_config(argv=None):
    """Resolved hyperparameters: DEFAULTS, then the preset, then the flags given."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(config.PRESETS), default=config.DEFAULT_PRESET,
                        help='named recipe applied on top of config.DEFAULTS (default: %(default)s)')
    for name, default in config.DEFAULTS.items():
        parser.add_argument('--' + name, type=flag_type(default), default=None,
                            metavar=type(default).__name__.upper(),
                            help='%s (default: %r; a preset may change it)'
                                 % (config.HELP[name], default))
    args = parser.parse_args(argv)
    cfg = dict(config.DEFAULTS, **config.PRESETS[args.preset])
    cfg.update({k: v for k, v in vars(args).items() if v is not None and k != 'preset'})
    cfg['preset'] = args.preset
    return cfg


def flag_type(default):
    if isinstance(default, bool):
        return _parse_bool
    return type(default)


def _parse_bool(text):
    value = {'1': True, 'true': True, 'yes': True, '0': False, 'false': False, 'no': False}
    if text.lower() not in value:
        raise argparse.ArgumentTypeError('expected 1/0 or true/false, got %r' % text)
    return value[text.lower()]


def check_architecture(cfg):
    """The architecture values (those a frozen model keeps), checked before building the graph."""
    for key, allowed in (('stem', tuple(mobilenet.STEMS)), ('normalization', ('cifar', 'inception'))):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    for key in ('width', 'min_depth', 'image_size'):
        if not (math.isfinite(cfg[key]) and cfg[key] > 0):
            raise UsageError('--%s must be a finite number greater than 0, got %r' % (key, cfg[key]))
    stride = math.prod(d.stride for d in mobilenet.STEMS[cfg['stem']])
    if math.ceil(cfg['image_size'] / stride) > 7:
        raise UsageError('--image_size %d is too large for --stem %s (at most %d: the logits pool '
                         'a 7x7 map at most); pass --stem imagenet for up to 224'
                         % (cfg['image_size'], cfg['stem'], 7 * stride))


def check_config(cfg):
    """Catch values that would only fail deep inside TensorFlow, or train on NaN."""
    check_architecture(cfg)
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError('--%s must be a finite number, got %r' % (key, value))
    for key, allowed in (('optimizer', ('adam', 'momentum', 'nesterov')),
                         ('lr_schedule', ('exponential', 'step', 'cosine', 'linear'))):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    for key in ('lr', 'batch_size', 'epochs', 'eval_batch_size', 'keep_checkpoints', 'towers',
                'lr_step_epochs', 'eval_every', 'lr_decay', 'lr_step_factor', 'batch_norm_epsilon'):
        if not cfg[key] > 0:
            raise UsageError('--%s must be greater than 0, got %r' % (key, cfg[key]))
    for key in ('steps_per_epoch', 'val_size', 'warmup_epochs', 'weight_decay', 'init_stddev'):
        if cfg[key] < 0:
            raise UsageError('--%s must be 0 or more, got %r' % (key, cfg[key]))
    for key in ('momentum', 'batch_norm_decay', 'ema_decay', 'label_smoothing'):
        if not 0 <= cfg[key] < 1:
            raise UsageError('--%s must be in [0, 1), got %r' % (key, cfg[key]))
    if cfg['batch_size'] % cfg['towers']:
        raise UsageError('--batch_size %d is not a multiple of --towers %d: each tower takes an '
                         'equal share' % (cfg['batch_size'], cfg['towers']))
    side = data_utils.IMAGE_SHAPE[0]
    if not 0 <= cfg['cutout'] <= side:
        raise UsageError('--cutout must be a side in pixels from 0 (off) to %d, got %r'
                         % (side, cfg['cutout']))
    if cfg['cutout'] and not cfg['augment']:
        raise UsageError('--cutout %d needs --augment 1 (cutout is part of the augmentation)'
                         % cfg['cutout'])
    if not 0 < cfg['dropout_keep_prob'] <= 1:
        raise UsageError('--dropout_keep_prob must be in (0, 1], got %r' % cfg['dropout_keep_prob'])
    if cfg['load_pretrain'] and not cfg['pretrain_path']:
        raise UsageError('--load_pretrain 1 needs --pretrain_path (a checkpoint prefix or folder)')


def build_model(images, cfg, num_classes, is_training, reuse=None, getter=None, towers=1):
    """Logits of MobileNetV1 on raw 0..255 images; preprocessing is part of the graph.

    `getter` is a variable_scope custom getter, e.g. to read weight averages. `towers` > 1
    splits the batch into that many copies of the network sharing one set of variables
    (slim's clones): independent ops that the session runs side by side.
    """
    net = data_utils.normalize(images, cfg['normalization'])
    parts, size = _split_batch(net, towers)
    updates = v1.get_collection_ref(v1.GraphKeys.UPDATE_OPS)
    logits = []
    with v1.variable_scope(v1.get_variable_scope(), custom_getter=getter):
        for part in parts:
            tower_logits, _ = mobilenet.mobilenet_v1(
                part, num_classes=num_classes, dropout_keep_prob=cfg['dropout_keep_prob'],
                is_training=is_training, min_depth=cfg['min_depth'], depth_multiplier=cfg['width'],
                conv_defs=mobilenet.STEMS[cfg['stem']], reuse=True if logits else reuse,
                use_explicit_padding=cfg['use_explicit_padding'], weight_decay=cfg['weight_decay'],
                stddev=cfg['init_stddev'] or None, regularize_depthwise=cfg['regularize_depthwise'],
                batch_norm_decay=cfg['batch_norm_decay'],
                batch_norm_epsilon=cfg['batch_norm_epsilon'])
            if not logits:
                first_tower_updates = len(updates)
            logits.append(tower_logits)
    # One moving-statistics update a step, from the first tower (as slim's model_deploy), rather
    # than one per tower racing on the same variables.
    del updates[first_tower_updates:]
    if towers == 1:
        return logits[0]
    return tf.concat(logits, 0)[:size]  # without the blank images _split_batch may add


def _split_batch(images, parts):
    """(`parts` equal slices of the batch, its size: an int where known, else a tensor).

    A size that is not a multiple of `parts` (the short last batch of an evaluation; training
    batches are multiples) gets blank images at the end first, as no slice may be empty.
    """
    if parts == 1:
        return [images], None
    size = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
    padding = -size % parts
    if not isinstance(padding, int) or padding:
        images = tf.pad(images, [[0, padding], [0, 0], [0, 0], [0, 0]])
    return tf.split(images, parts), size


def learning_rate(cfg, progress):
    """Learning rate at `progress` (a float tensor, in epochs)."""
    lr, total = cfg['lr'], float(cfg['epochs'])
    if cfg['lr_schedule'] == 'exponential':
        # Staircase: the old recipe's "x0.99 every epoch".
        lr = lr * tf.pow(cfg['lr_decay'], tf.floor(progress))
    elif cfg['lr_schedule'] == 'step':
        lr = lr * tf.pow(cfg['lr_step_factor'], tf.floor(progress / cfg['lr_step_epochs']))
    elif cfg['lr_schedule'] == 'cosine':
        lr = lr * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(progress / total, 1.0)))
    else:
        lr = lr * tf.maximum(1.0 - progress / total, 0.0)
    if cfg['warmup_epochs'] > 0:
        lr = lr * tf.minimum(1.0, (progress + 1e-3) / cfg['warmup_epochs'])
    return lr


def make_optimizer(cfg, lr):
    if cfg['optimizer'] == 'adam':
        optimizer = v1.train.AdamOptimizer(lr)
    else:
        optimizer = v1.train.MomentumOptimizer(lr, cfg['momentum'],
                                               use_nesterov=cfg['optimizer'] == 'nesterov')
    if cfg['mixed_precision']:
        # Dynamic loss scaling; a step whose gradients overflow is skipped (global_step too).
        optimizer = v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, 'dynamic')
    return optimizer


def session_config(cfg):
    config_proto = v1.ConfigProto()
    if cfg['towers'] > 1:
        # The cores shared out between the towers, which run side by side: on a few cores this
        # wastes less time than splitting every small op (batch norm, depthwise) across them all.
        config_proto.intra_op_parallelism_threads = max(1, usable_cores() // cfg['towers'])
        config_proto.inter_op_parallelism_threads = cfg['towers']
    if cfg['xla']:
        config_proto.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    if cfg['mixed_precision']:
        # Grappler casts what is safe to float16 on GPUs (and nothing on a CPU).
        config_proto.graph_options.rewrite_options.auto_mixed_precision = \
            rewriter_config_pb2.RewriterConfig.ON
    return config_proto


def usable_cores():
    """The CPU cores this process may run on (taskset and cpusets included)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def training_step(cfg, images, labels, num_classes, global_step, lr):
    """(loss, accuracy, minimize op, model variables) of the training tower on one batch."""
    logits = build_model(images, cfg, num_classes, is_training=True, towers=cfg['towers'])
    # Before the optimizer adds its slots under the same scope.
    model_variables = v1.global_variables(scope='MobilenetV1/')
    targets = tf.one_hot(labels, num_classes)
    if cfg['label_smoothing']:
        targets = targets * (1.0 - cfg['label_smoothing']) + cfg['label_smoothing'] / num_classes
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                                      tf.float32))
    regularization = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    total_loss = loss + tf.add_n(regularization) if regularization else loss
    # Batch-norm moving averages update with every step, as slim's train_op did.
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        minimize = make_optimizer(cfg, lr).minimize(total_loss, global_step)
    return loss, accuracy, minimize, model_variables


def build_graph(cfg, data, steps_per_epoch):
    """The training graph: input pipelines, train and eval towers, optimizer, state."""
    v1.set_random_seed(cfg['seed'])
    g = argparse.Namespace()
    num_classes = len(data['label_names'])

    with v1.variable_scope(STATE_SCOPE):
        g.global_step = v1.train.get_or_create_global_step()
        g.epoch = v1.get_variable('epoch', [], tf.int64, v1.zeros_initializer(), trainable=False)
        g.step_in_epoch = v1.get_variable('step_in_epoch', [], tf.int64, v1.zeros_initializer(),
                                          trainable=False)
        g.best_accuracy = v1.get_variable('best_accuracy', [], tf.float32, v1.zeros_initializer(),
                                          trainable=False)
        # Seconds spent in training steps, and in all (evaluation and saving too), over resumes.
        g.train_seconds = v1.get_variable('train_seconds', [], tf.float64, v1.zeros_initializer(),
                                          trainable=False)
        g.wall_seconds = v1.get_variable('wall_seconds', [], tf.float64, v1.zeros_initializer(),
                                         trainable=False)
        # Written from Python at epoch ends and on interrupt: one op sets them all.
        g.state = dict(epoch=g.epoch, step_in_epoch=g.step_in_epoch, best_accuracy=g.best_accuracy,
                       train_seconds=g.train_seconds, wall_seconds=g.wall_seconds)
        g.state_feeds = {k: v1.placeholder(v.dtype.base_dtype, [], k) for k, v in g.state.items()}
        g.set_state = tf.group([v.assign(g.state_feeds[k]) for k, v in g.state.items()])

    images, labels, g.train_init, g.train_feed = data_utils.input_pipeline(
        data['train_images'], data['train_labels'], cfg['batch_size'], training=True,
        augment=cfg['augment'], image_size=cfg['image_size'], seed=cfg['seed'],
        cutout=cfg['cutout'])
    progress = tf.cast(g.epoch, tf.float32) + tf.cast(g.step_in_epoch, tf.float32) / steps_per_epoch
    g.lr = learning_rate(cfg, progress)
    g.loss, g.accuracy, minimize, g.model_variables = training_step(
        cfg, images, labels, num_classes, g.global_step, g.lr)
    updates = [minimize]
    eval_getter = None
    if cfg['ema_decay']:
        # Weight averaging: evaluation (and export) read the shadow copies, saved under slim's
        # '<variable>/ExponentialMovingAverage' names. num_updates warms the decay up from 0.1.
        ema = v1.train.ExponentialMovingAverage(cfg['ema_decay'], num_updates=g.global_step)
        with tf.control_dependencies([minimize]):
            updates.append(ema.apply(g.model_variables))
        eval_getter = lambda getter, *args, **kwargs: _average_or_self(ema, getter(*args, **kwargs))
    with tf.control_dependencies(updates):
        g.train_op = v1.assign_add(g.step_in_epoch, 1)

    g.eval = {}
    for split in ('test', 'val'):
        if not len(data[split + '_images']):
            continue
        images, labels, init, feed = data_utils.input_pipeline(
            data[split + '_images'], data[split + '_labels'], cfg['eval_batch_size'],
            training=False, image_size=cfg['image_size'])
        logits = build_model(images, cfg, num_classes, False, reuse=True, getter=eval_getter,
                             towers=cfg['towers'])
        sums = dict(loss=tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(
            labels=tf.one_hot(labels, num_classes), logits=logits)),
            accuracy=_count_correct(logits, labels))
        if cfg['eval_flip_tta']:
            flipped = build_model(tf.reverse(images, [2]), cfg, num_classes, False, reuse=True,
                                  getter=eval_getter, towers=cfg['towers'])
            sums['accuracy_tta'] = _count_correct(tf.nn.softmax(logits) + tf.nn.softmax(flipped),
                                                  labels)
        g.eval[split] = (init, feed, sums, len(data[split + '_labels']))

    g.init = v1.global_variables_initializer()
    g.saver = v1.train.Saver(max_to_keep=cfg['keep_checkpoints'], save_relative_paths=True)
    g.best_saver = v1.train.Saver(max_to_keep=1, save_relative_paths=True)
    return g


def _average_or_self(ema, var):
    average = ema.average(var)
    return var if average is None else average


def _count_correct(scores, labels):
    predictions = tf.argmax(scores, 1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float64))


def set_state(sess, g, **values):
    sess.run(g.set_state, {g.state_feeds[k]: v for k, v in values.items()})


def evaluate(sess, g, split):
    """{'loss', 'accuracy'[, 'accuracy_tta']} over every image of the split."""
    init, feed, sums, count = g.eval[split]
    sess.run(init, feed())
    totals = dict.fromkeys(sums, 0.0)
    while True:
        try:
            batch = sess.run(sums)
        except tf.errors.OutOfRangeError:
            break
        for key, value in batch.items():
            totals[key] += value
    return {key: float(value / count) for key, value in totals.items()}


def score(sess, g):
    """{'test_accuracy', ...[, 'val_accuracy', ...]}: evaluate() on every split there is."""
    return {split + '_' + key: value for split in g.eval
            for key, value in evaluate(sess, g, split).items()}


def restore_pretrained(sess, variables, path):
    """Load every variable whose name and shape match `path`; return (prefix, restored, skipped)."""
    try:
        prefix = checkpoints.checkpoint_prefix(path)
        reader, shapes = checkpoints.open_checkpoint(prefix)
        restored, skipped = checkpoints.match_variables(variables, shapes)
        if not restored:
            raise checkpoints.ModelError('%s: no variable matched by name and shape; is it a '
                                         'MobilenetV1 checkpoint?' % path)
        checkpoints.assign_from_checkpoint(sess, prefix, reader, restored)
    except checkpoints.ModelError as e:
        raise UsageError('--pretrain_path %s' % e) from e
    return prefix, restored, skipped


def load_data(cfg):
    data_utils.ensure_cifar10(cfg['data_dir'], archive=cfg['cifar_archive'] or None)
    data = data_utils.load_cifar10(cfg['data_dir'])
    if cfg['val_size'] >= len(data['train_labels']):
        raise UsageError('--val_size %d leaves no training images (there are %d)'
                         % (cfg['val_size'], len(data['train_labels'])))
    (data['train_images'], data['train_labels'],
     data['val_images'], data['val_labels']) = data_utils.split_validation(
        data['train_images'], data['train_labels'], cfg['val_size'], seed=cfg['seed'])
    return data


def steps_in_epoch(cfg, num_train):
    """--steps_per_epoch, or one pass over the training set."""
    return cfg['steps_per_epoch'] or num_train // cfg['batch_size']


# Values a resumed run may change, at the price of a jump in the learning rate.
SCHEDULE_KEYS = ('epochs', 'lr', 'lr_schedule', 'lr_decay', 'lr_step_epochs', 'lr_step_factor',
                 'warmup_epochs')


def resume_signature(cfg):
    """What a resumed run must share with the run it resumes (cfg with steps_per_epoch resolved)."""
    signature = {key: cfg.get(key) for key in RESUME_KEYS}
    signature['optimizer'] = 'adam' if cfg.get('optimizer') == 'adam' else 'momentum or nesterov'
    signature['ema_decay'] = 'on' if cfg.get('ema_decay') else 'off'
    return signature


def check_resume_config(cfg, path):
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            # Defaults for values older runs did not record.
            saved = dict(config.DEFAULTS, **json.load(f))
    except (OSError, ValueError) as e:
        raise UsageError('%s: cannot read (%s); use another --ckpt_dir' % (path, e)) from e
    for key, value in resume_signature(cfg).items():
        if resume_signature(saved)[key] != value:
            raise UsageError('--%s %s differs from the run being resumed in %s (%s); use another '
                             '--ckpt_dir, or the same value' % (key, value, os.path.dirname(path),
                                                                resume_signature(saved)[key]))
    changed = [key for key in SCHEDULE_KEYS if saved[key] != cfg[key]]
    if changed:
        print('Note: %s changed since the run began: the learning-rate schedule is recomputed '
              'from here on' % ', '.join('--%s %s (was %s)' % (k, cfg[k], saved[k]) for k in changed),
              flush=True)
    if saved['towers'] != cfg['towers']:
        print('Note: --towers %d (was %d): batch norm normalises groups of %d images from here on'
              % (cfg['towers'], saved['towers'], math.ceil(cfg['batch_size'] / cfg['towers'])),
              flush=True)


def write_scalars(writer, step, values):
    summary = v1.Summary(value=[v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
    writer.add_summary(summary, step)
    writer.flush()


def train(cfg):
    """Train (or resume) the run in cfg['ckpt_dir']; return the summary dict."""
    check_config(cfg)
    ckpt_dir = cfg['ckpt_dir']
    try:
        os.makedirs(ckpt_dir, exist_ok=True)
    except OSError as e:
        raise UsageError('--ckpt_dir %s: cannot create it (%s)' % (ckpt_dir, e.strerror)) from e
    config_path = os.path.join(ckpt_dir, 'config.json')
    latest = tf.train.latest_checkpoint(ckpt_dir)
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    if not latest and os.path.exists(metrics_path) and os.path.getsize(metrics_path):
        raise UsageError('--ckpt_dir %s holds the metrics.jsonl of another run but no checkpoint; '
                         'use another --ckpt_dir' % ckpt_dir)
    data = load_data(cfg)
    num_train = len(data['train_labels'])
    if num_train < cfg['batch_size']:
        raise UsageError('--batch_size %d is larger than the %d training images'
                         % (cfg['batch_size'], num_train))
    cfg = dict(cfg, steps_per_epoch=steps_in_epoch(cfg, num_train))
    if latest:
        check_resume_config(cfg, config_path)

    with tf.Graph().as_default() as graph, v1.Session(config=session_config(cfg)) as sess:
        g = build_graph(cfg, data, cfg['steps_per_epoch'])
        sess.run(g.init)
        if latest:
            resume(sess, g, latest, cfg)
        elif cfg['load_pretrain']:
            prefix, restored, skipped = restore_pretrained(sess, g.model_variables,
                                                           cfg['pretrain_path'])
            print('Restored %d variables from %s; skipped %d:' % (len(restored), prefix,
                                                                  len(skipped)), flush=True)
            for line in skipped:
                print('  ' + line, flush=True)
        with open(config_path + '.tmp', 'w') as f:
            json.dump(dict(cfg, label_names=data['label_names']), f, indent=1, sort_keys=True)
        os.replace(config_path + '.tmp', config_path)
        writer = v1.summary.FileWriter(ckpt_dir)
        graph.finalize()  # the loop below must not grow the graph step after step
        try:
            return train_loop(cfg, sess, g, writer)
        finally:
            writer.close()


def resume(sess, g, latest, cfg):
    try:
        g.saver.restore(sess, latest)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise UsageError('%s: cannot resume from it (%s); use another --ckpt_dir'
                         % (latest, checkpoints.first_line(e))) from e
    # The savers only delete what they wrote themselves: hand them what earlier runs left.
    for saver, folder in ((g.saver, cfg['ckpt_dir']),
                          (g.best_saver, os.path.join(cfg['ckpt_dir'], checkpoints.BEST_FOLDER))):
        state = tf.train.get_checkpoint_state(folder)
        if state:
            saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
    note = ' (--load_pretrain ignored: the run has checkpoints)' if cfg['load_pretrain'] else ''
    print('Resuming from %s%s' % (latest, note), flush=True)


def read_metrics(metrics_path, last_epoch):
    """The metrics lines of epochs up to `last_epoch`, rewriting the file without later ones.

    An interrupt between an epoch's metrics line and its checkpoint leaves a line that the
    resumed run writes again; a crash mid-write leaves a line that does not parse.
    """
    if not os.path.exists(metrics_path):
        return []
    records = []
    with open(metrics_path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get('epoch', 0) <= last_epoch:
                records.append(record)
    with open(metrics_path + '.tmp', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    os.replace(metrics_path + '.tmp', metrics_path)
    return records


def train_loop(cfg, sess, g, writer):
    """Epochs until cfg['epochs']: train, evaluate, log, checkpoint. Ctrl-C saves first."""
    ckpt_dir, steps_per_epoch = cfg['ckpt_dir'], cfg['steps_per_epoch']
    prefix = os.path.join(ckpt_dir, 'model.ckpt')
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    # Python holds the committed state, what the last checkpoint says; the graph counts steps.
    epoch, step_in_epoch, best, seconds, wall_before = sess.run(
        [g.epoch, g.step_in_epoch, g.best_accuracy, g.train_seconds, g.wall_seconds])
    step_in_epoch = min(step_in_epoch, steps_per_epoch)
    records = read_metrics(metrics_path, epoch)
    record = records[-1] if records else {}  # what the summary reports if no epoch is left
    resumed_at = time.time()

    def save():
        g.saver.save(sess, prefix, global_step=g.global_step, write_meta_graph=False)

    bar, start, stepping, steps_done = None, None, False, step_in_epoch
    try:
        while epoch < cfg['epochs']:
            sess.run(g.train_init, g.train_feed(epoch, step_in_epoch))
            start = time.time()
            losses, accuracies = [], []
            bar = tqdm(total=steps_per_epoch, initial=step_in_epoch, unit='step', file=sys.stderr,
                       desc='epoch %d/%d' % (epoch + 1, cfg['epochs']), dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0)
            stepping = True
            for _ in range(step_in_epoch, steps_per_epoch):
                _, loss, accuracy, lr = sess.run([g.train_op, g.loss, g.accuracy, g.lr])
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        'loss is %s at step %d (epoch %d); stopping without saving%s. Lower --lr '
                        'or check the data.' % (
                            loss, sess.run(g.global_step), epoch + 1,
                            ', the last good checkpoint in %s is untouched' % ckpt_dir
                            if tf.train.latest_checkpoint(ckpt_dir) else ''))
                losses.append(loss)
                accuracies.append(accuracy)
                bar.update()
                bar.set_postfix(loss='%.3f' % loss, lr='%.4g' % lr, img_s='%.0f' % (
                    len(losses) * cfg['batch_size'] / (time.time() - start)), refresh=False)
            stepping, steps_done = False, steps_per_epoch
            bar.close()
            train_time = time.time() - start
            seconds += train_time
            start = None
            images_per_sec = len(losses) * cfg['batch_size'] / train_time if losses else None

            # An epoch resumed after its last step (interrupted in evaluation or saving) has no
            # training figures to report; it is scored, if it is an epoch to score, and committed.
            record = dict(epoch=int(epoch + 1), step=int(sess.run(g.global_step)),
                          lr=float(lr if losses else sess.run(g.lr)),
                          train_loss=float(np.mean(losses)) if losses else None,
                          train_accuracy=float(np.mean(accuracies)) if losses else None,
                          images_per_sec=None if images_per_sec is None else round(images_per_sec, 1))
            if (epoch + 1) % cfg['eval_every'] == 0 or epoch + 1 == cfg['epochs']:
                record.update(score(sess, g))
            selection = record.get('val_accuracy', record.get('test_accuracy', best))
            wall = wall_before + time.time() - resumed_at
            record.update(train_seconds=round(seconds, 1), wall_seconds=round(wall, 1))

            # Commit: the best copy and the metrics line first, the checkpoint resume reads last,
            # so that an interrupt anywhere here leaves a state resume completes (read_metrics).
            set_state(sess, g, epoch=epoch + 1, step_in_epoch=0, best_accuracy=max(best, selection),
                      train_seconds=seconds, wall_seconds=wall)
            if selection > best:
                g.best_saver.save(sess, os.path.join(ckpt_dir, checkpoints.BEST_FOLDER, 'model.ckpt'),
                                  global_step=g.global_step, write_meta_graph=False)
            with open(metrics_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
            save()
            epoch, step_in_epoch, steps_done, best = epoch + 1, 0, 0, max(best, selection)

            write_scalars(writer, record['step'], {k: v for k, v in record.items()
                                                   if k not in ('epoch', 'step') and v is not None})
            print(epoch_line(record, cfg['epochs'], train_time), flush=True)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        # Mid-epoch the graph's counter is exact (a step that was running has finished).
        done = sess.run(g.step_in_epoch) if stepping else steps_done
        set_state(sess, g, epoch=epoch, step_in_epoch=done, best_accuracy=best,
                  train_seconds=seconds + (time.time() - start if start else 0.0),
                  wall_seconds=wall_before + time.time() - resumed_at)
        save()
        print('Interrupted: saved %s-%d; run the same command to resume.'
              % (prefix, sess.run(g.global_step)), file=sys.stderr, flush=True)
        raise

    if record and 'test_accuracy' not in record:
        # --epochs lowered to an epoch the run went past unscored: score the weights it has.
        record = dict(record, **score(sess, g))
    return dict(final_test_accuracy=record.get('test_accuracy'),
                final_test_accuracy_tta=record.get('test_accuracy_tta'), best_accuracy=round(float(best), 6),
                best_on='val' if 'val' in g.eval else 'test', epochs=int(epoch),
                train_seconds=round(seconds, 1),
                wall_seconds=round(wall_before + time.time() - resumed_at, 1),
                images_per_sec=record.get('images_per_sec'),
                ckpt=tf.train.latest_checkpoint(ckpt_dir))


def epoch_line(record, epochs, train_time):
    parts = ['epoch %d/%d' % (record['epoch'], epochs)]
    if record['train_loss'] is not None:
        parts.append('loss %.4f  train acc %.4f' % (record['train_loss'], record['train_accuracy']))
    if 'test_loss' in record:
        parts.append('test loss %.4f  test acc %.4f' % (record['test_loss'], record['test_accuracy']))
    parts += ['%s %.4f' % (key.replace('_', ' '), record[key])
              for key in ('test_accuracy_tta', 'val_accuracy') if key in record]
    if record['images_per_sec'] is not None:
        parts.append('%.0f img/s' % record['images_per_sec'])
    parts.append('%.0f s' % train_time)
    return '  '.join(parts)


def _interrupt(signum, frame):
    # SIGTERM (kill, a scheduler's preemption) saves and exits like Ctrl-C.
    raise KeyboardInterrupt


def main(argv=None):
    cfg = parse_config(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = train(cfg)
    except (UsageError, data_utils.DataError, FloatingPointError) as e:
        print('train.py: error: %s' % e, file=sys.stderr)
        return 2 if not isinstance(e, FloatingPointError) else 1
    except KeyboardInterrupt:
        return 130
    finally:
        # Called from other code (tests, a notebook), a later SIGTERM is theirs again. None: a
        # handler set outside Python, which cannot be put back; the default is the nearest.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
