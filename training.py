"""The training graph shared by train.py, benchmark.py and the inference tools.

The model as trained (build_model: preprocessing, towers, MobileNetV1), the training step
(loss, L2, batch-norm updates, optimizer), the learning-rate schedule, the session's thread
settings, evaluation, restoring pretrained weights and the checks that a configuration and a
resumed run make sense. The data it trains on is run_data.py's.
"""
import argparse
import math
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

import checkpoints
import config
import cpu_kernels
import data_utils
import datasets
import metrics
import mobilenet
import run_data
from cli import UsageError

v1 = tf.compat.v1
tf.get_logger().setLevel('ERROR')  # Saver's deprecation notices are not the user's business

# Variables that make a checkpoint a resumable run rather than just weights.
STATE_SCOPE = 'train_state'
# Values a resumed run must keep: they change the variables, what the model computes, or
# which images an epoch holds. The optimizer's family and weight averaging are checked too.
RESUME_KEYS = ('width', 'min_depth', 'stem', 'use_explicit_padding', 'normalization', 'image_size',
               'dataset', 'val_size', 'test_size', 'seed', 'batch_size', 'steps_per_epoch',
               'mixed_precision', 'trainable_scopes', 'class_weights')



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
    cpu_kernels.check_flags(cfg)
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError('--%s must be a finite number, got %r' % (key, value))
    for key, allowed in (('dataset', datasets.DATASETS), ('class_weights', ('', 'balanced')),
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
    workers = cfg.get('workers', 1)
    if cfg['batch_size'] % workers:
        raise UsageError('--batch_size %d (the global batch) is not a multiple of the %d workers '
                         'TF_CONFIG lists: each takes an equal share' % (cfg['batch_size'], workers))
    if run_data.worker_batch(cfg) % training_towers(cfg):
        raise UsageError('--batch_size %d%s is not a multiple of --towers %d: each tower takes an '
                         'equal share' % (cfg['batch_size'], ' (%d a worker)'
                                          % run_data.worker_batch(cfg) if workers > 1 else '',
                                          training_towers(cfg)))
    side = data_utils.IMAGE_SHAPE[0]
    if not 0 <= cfg['cutout'] <= side:
        raise UsageError('--cutout must be a side in pixels from 0 (off) to %d, got %r'
                         % (side, cfg['cutout']))
    if cfg['cutout'] and cfg['dataset'] != 'cifar10' and cfg['image_size'] != datasets.CACHED_SIZE:
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


def build_model(images, cfg, num_classes, is_training, reuse=None, getter=None, towers=1,
                pointwise='conv2d', dropout_seed=None, replica=(0, 1)):
    """Logits of MobileNetV1 on raw 0..255 images; preprocessing is part of the graph.

    `getter` is a variable_scope custom getter, e.g. to read weight averages. `towers` > 1
    splits the batch into that many copies of the network sharing one set of variables
    (slim's clones): independent ops that the session runs side by side. `pointwise` is how
    1x1 convolutions are computed (mobilenet.POINTWISE); deployment graphs keep 'conv2d'.
    `dropout_seed` (int64 [seed, step]) keys each tower's dropout mask (mobilenet_v1's);
    `replica` (this one's index, how many) numbers the towers of every replica apart, so that
    R replicas of T towers draw the masks of one process with R x T towers.
    """
    net = data_utils.normalize(images, cfg['normalization'])
    parts, size = _split_batch(net, towers)
    updates = v1.get_collection_ref(v1.GraphKeys.UPDATE_OPS)
    logits = []
    with v1.variable_scope(v1.get_variable_scope(), custom_getter=getter):
        for tower, part in enumerate(parts):
            tower_seed = None if dropout_seed is None else tf.stack(
                [dropout_seed[0],
                 (dropout_seed[1] * replica[1] + replica[0]) * len(parts) + tower])
            tower_logits, _ = mobilenet.mobilenet_v1(
                part, num_classes=num_classes, dropout_keep_prob=cfg['dropout_keep_prob'],
                is_training=is_training, min_depth=cfg['min_depth'], depth_multiplier=cfg['width'],
                conv_defs=mobilenet.STEMS[cfg['stem']], reuse=True if logits else reuse,
                use_explicit_padding=cfg['use_explicit_padding'], weight_decay=cfg['weight_decay'],
                stddev=cfg['init_stddev'] or None, regularize_depthwise=cfg['regularize_depthwise'],
                batch_norm_decay=cfg['batch_norm_decay'],
                batch_norm_epsilon=cfg['batch_norm_epsilon'], pointwise=pointwise,
                trainable_scopes=scope_list(cfg.get('trainable_scopes', '')) if is_training else None,
                dropout_seed=tower_seed)
            if not logits:
                first_tower_updates = len(updates)
            logits.append(tower_logits)
    # One moving-statistics update a step, from the first tower (as slim's model_deploy), rather
    # than one per tower racing on the same variables.
    del updates[first_tower_updates:]
    if towers == 1:
        return logits[0]
    return tf.concat(logits, 0)[:size]  # without the blank images _split_batch may add


def scope_list(text):
    """slim's comma-separated scope prefixes as a list; '' is None (every variable)."""
    scopes = [scope.strip() for scope in text.split(',') if scope.strip()]
    return scopes or None


def _check_scopes(flag, text, variables):
    """UsageError for a prefix of `flag` that names no model variable (a typo trains all)."""
    names = [v.op.name for v in variables]
    for scope in scope_list(text) or []:
        if not any(name.startswith(scope) for name in names):
            raise UsageError('--%s %s names no variable of the model; scopes look like '
                             'MobilenetV1/Logits, MobilenetV1/Conv2d_13_pointwise or '
                             'MobilenetV1/Conv2d_1' % (flag, scope))


def training_pointwise(cfg):
    """The 1x1 formulation of the training graph: cfg's --pointwise, with 'auto' resolved."""
    return cpu_kernels.pointwise_choice(cfg['pointwise'])[0]


def training_towers(cfg):
    """cfg's --towers, with 'auto' resolved for this machine as cpu_kernels.settle does."""
    return cpu_kernels.towers_choice(cfg['towers'], run_data.worker_batch(cfg))[0]


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
    towers = training_towers(cfg)
    if towers > 1:
        # The cores shared out between the towers, which run side by side: on a few cores this
        # wastes less time than splitting every small op (batch norm, depthwise) across them all.
        config_proto.intra_op_parallelism_threads = max(1, cpu_kernels.usable_cores() // towers)
        config_proto.inter_op_parallelism_threads = towers
    if cfg['xla']:
        config_proto.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    if cfg['mixed_precision']:
        # Grappler casts what is safe to float16 on GPUs (and nothing on a CPU).
        config_proto.graph_options.rewrite_options.auto_mixed_precision = \
            rewriter_config_pb2.RewriterConfig.ON
    return config_proto


def training_step(cfg, images, labels, num_classes, global_step, lr, class_weights=None,
                  replica=(0, 1)):
    """(loss, accuracy, minimize op, model variables) of the training tower on one batch;
    `class_weights` (one per class) weigh each image's loss by its class. Under tf.distribute
    `replica` is (this replica's index, how many): the optimizer sums the replicas' gradients,
    so each minimizes its share, 1/replicas of its loss, and together they take the step of one
    process on the global batch."""
    # Dropout keyed by (seed, step) as the augmentation is: exact on resume, as nothing else
    # about a step depends on how many steps this process has run.
    dropout_seed = tf.stack([tf.constant(cfg['seed'], tf.int64), tf.cast(global_step, tf.int64)])
    logits = build_model(images, cfg, num_classes, is_training=True, towers=training_towers(cfg),
                         pointwise=training_pointwise(cfg), dropout_seed=dropout_seed,
                         replica=replica)
    # Before the optimizer adds its slots under the same scope.
    model_variables = v1.global_variables(scope='MobilenetV1/')
    _check_scopes('trainable_scopes', cfg['trainable_scopes'], model_variables)
    _check_scopes('checkpoint_exclude_scopes', cfg['checkpoint_exclude_scopes'], model_variables)
    scopes = scope_list(cfg['trainable_scopes'])
    # Layers outside --trainable_scopes get no gradient (and so no slots, no backward pass).
    trained = [v for v in v1.trainable_variables('MobilenetV1/')
               if mobilenet.in_scopes(v.op.name, scopes)]
    if not trained:
        raise UsageError('--trainable_scopes %s holds no trainable variable (only batch-norm '
                         'statistics?)' % cfg['trainable_scopes'])
    # Label -1: an image that did not decode (image_pipeline), kept in place, counted nowhere.
    valid = tf.cast(labels >= 0, tf.float32)
    known = tf.maximum(labels, 0)
    targets = tf.one_hot(known, num_classes)
    if cfg['label_smoothing']:
        targets = targets * (1.0 - cfg['label_smoothing']) + cfg['label_smoothing'] / num_classes
    losses = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits) * valid
    if class_weights is not None:
        losses *= tf.gather(tf.constant(class_weights, tf.float32), known)
    images = tf.maximum(tf.reduce_sum(valid), 1.0)
    loss = tf.reduce_sum(losses) / images
    accuracy = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                                     tf.float32)) / images
    regularization = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    total_loss = loss + tf.add_n(regularization) if regularization else loss
    # Batch-norm moving averages update with every step, as slim's train_op did.
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        minimize = make_optimizer(cfg, lr).minimize(total_loss / replica[1], global_step,
                                                    var_list=trained)
    return loss, accuracy, minimize, model_variables


def build_graph(cfg, data, steps_per_epoch, strategy=None, worker=(0, 1)):
    """The training graph: input pipelines, train and eval towers, optimizer, state. With a
    tf.distribute `strategy` (call inside its scope), the step is one replica's, on this
    `worker`'s (index, count) slice of each global batch."""
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

    images, labels, g.train_init, g.train_feed = run_data.input_pipeline(
        cfg, data, 'train', num_classes, training=True, worker=worker)
    progress = tf.cast(g.epoch, tf.float32) + tf.cast(g.step_in_epoch, tf.float32) / steps_per_epoch
    g.lr = learning_rate(cfg, progress)
    if strategy is None:
        g.loss, g.accuracy, minimize, g.model_variables = training_step(
            cfg, images, labels, num_classes, g.global_step, g.lr, data.get('class_weights'))
    else:
        g.loss, g.accuracy, minimize, g.model_variables = replicated_step(
            strategy, cfg, images, labels, num_classes, g.global_step, g.lr,
            data.get('class_weights'))
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
        if not run_data.split_size(data, split):
            continue
        images, labels, init, feed = run_data.input_pipeline(cfg, data, split, num_classes, training=False)
        logits = build_model(images, cfg, num_classes, False, reuse=True, getter=eval_getter,
                             towers=training_towers(cfg), pointwise=training_pointwise(cfg))
        # Images counted as they come: a streamed split may skip some that do not decode.
        sums = dict(loss=tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(
            labels=tf.one_hot(labels, num_classes), logits=logits)),
            accuracy=_count_correct(logits, labels), images=tf.cast(tf.size(labels), tf.float32),
            confusion=tf.math.confusion_matrix(labels, tf.argmax(logits, 1, output_type=tf.int32),
                                               num_classes, dtype=tf.float32))
        if cfg['eval_flip_tta']:
            flipped = build_model(tf.reverse(images, [2]), cfg, num_classes, False, reuse=True,
                                  getter=eval_getter, towers=training_towers(cfg),
                                  pointwise=training_pointwise(cfg))
            sums['accuracy_tta'] = _count_correct(tf.nn.softmax(logits) + tf.nn.softmax(flipped),
                                                  labels)
        g.eval[split] = (init, feed, sums)

    g.init = v1.global_variables_initializer()
    g.saver = v1.train.Saver(max_to_keep=cfg['keep_checkpoints'], save_relative_paths=True)
    g.best_saver = v1.train.Saver(max_to_keep=1, save_relative_paths=True)
    return g


def replicated_step(strategy, cfg, images, labels, num_classes, global_step, lr, class_weights):
    """training_step on each of this worker's replicas (one on a CPU), the gradients summed
    across the cluster; loss and accuracy are the global batch's (an all-reduce of two scalars)."""
    local = len(strategy.extended.worker_devices)
    if run_data.worker_batch(cfg) % local:
        raise UsageError('--batch_size %d%s is not a multiple of the %d GPUs: each takes an equal '
                         'share' % (cfg['batch_size'], ' (%d a worker)' % run_data.worker_batch(cfg)
                                    if cfg.get('workers', 1) > 1 else '', local))
    made = []

    def step(images, labels):
        index = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        if local > 1:  # a worker's images are shared out between its GPUs as towers share a batch
            size = run_data.worker_batch(cfg) // local
            start = index % local * size
            images, labels = images[start:start + size], labels[start:start + size]
        loss, accuracy, minimize, variables = training_step(
            cfg, images, labels, num_classes, global_step, lr, class_weights,
            replica=(index, strategy.num_replicas_in_sync))
        made.append(variables)
        return loss, accuracy, minimize

    loss, accuracy, minimize = strategy.extended.call_for_each_replica(step, args=(images, labels))
    mean = tf.distribute.ReduceOp.MEAN
    return (strategy.reduce(mean, loss, axis=None), strategy.reduce(mean, accuracy, axis=None),
            strategy.group(minimize), made[0])


def _average_or_self(ema, var):
    average = ema.average(var)
    return var if average is None else average


def _count_correct(scores, labels):
    predictions = tf.argmax(scores, 1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float64))


def set_state(sess, g, **values):
    sess.run(g.set_state, {g.state_feeds[k]: v for k, v in values.items()})


def evaluate(sess, g, split):
    """{'loss', 'accuracy', 'macro_f1'[, 'accuracy_tta']} over every image of the split."""
    init, feed, sums = g.eval[split]
    sess.run(init, feed())
    totals = dict.fromkeys(sums, 0.0)
    while True:
        try:
            batch = sess.run(sums)
        except tf.errors.OutOfRangeError:
            break
        for key, value in batch.items():
            totals[key] += value
    count, confusion = totals.pop('images'), totals.pop('confusion')
    result = {key: float(value / count) if count else None for key, value in totals.items()}
    result['macro_f1'] = metrics.macro_f1(confusion) if count else None
    return result


def score(sess, g):
    """{'test_accuracy', ...[, 'val_accuracy', ...]}: evaluate() on every split there is."""
    return {split + '_' + key: value for split in g.eval
            for key, value in evaluate(sess, g, split).items()}


def restore_pretrained(sess, variables, path, exclude_scopes=''):
    """Load every variable whose name and shape match `path`, but those under `exclude_scopes`
    (slim's --checkpoint_exclude_scopes); return (prefix, restored, skipped)."""
    excluded = scope_list(exclude_scopes) or []
    left_out = [v for v in variables if any(v.op.name.startswith(s) for s in excluded)]
    kept = [v for v in variables if not any(v.op.name.startswith(s) for s in excluded)]
    try:
        prefix = checkpoints.checkpoint_prefix(path)
        reader, shapes = checkpoints.open_checkpoint(prefix)
        restored, skipped = checkpoints.match_variables(kept, shapes)
        skipped += ['%s excluded by --checkpoint_exclude_scopes' % v.op.name for v in left_out]
        if not restored:
            raise checkpoints.ModelError('%s: no variable matched by name and shape; is it a '
                                         'MobilenetV1 checkpoint?' % path)
        checkpoints.assign_from_checkpoint(sess, prefix, reader, restored)
    except checkpoints.ModelError as e:
        raise UsageError('--pretrain_path %s' % e) from e
    return prefix, restored, skipped


# Values a resumed run may change, at the price of a jump in the learning rate.
SCHEDULE_KEYS = ('epochs', 'lr', 'lr_schedule', 'lr_decay', 'lr_step_epochs', 'lr_step_factor',
                 'warmup_epochs')


def resume_signature(cfg):
    """What a resumed run must share with the run it resumes (cfg with steps_per_epoch resolved)."""
    signature = {key: cfg.get(key) for key in RESUME_KEYS}
    signature['optimizer'] = 'adam' if cfg.get('optimizer') == 'adam' else 'momentum or nesterov'
    signature['ema_decay'] = 'on' if cfg.get('ema_decay') else 'off'
    return signature


def check_resume_config(cfg, path, label_names=None):
    if not os.path.exists(path):
        return
    try:
        # Defaults for values older runs did not record.
        saved = dict(config.DEFAULTS, **checkpoints.load_config(path))
    except checkpoints.ModelError as e:
        raise UsageError('%s; fix or delete it (resume then takes this command\'s flags), or '
                         'use another --ckpt_dir' % e) from e
    for key, value in resume_signature(cfg).items():
        if resume_signature(saved)[key] != value:
            raise UsageError('--%s %s differs from the run being resumed in %s (%s); use another '
                             '--ckpt_dir, or the same value' % (key, value, os.path.dirname(path),
                                                                resume_signature(saved)[key]))
    if label_names is not None and saved.get('label_names', label_names) != list(label_names):
        raise UsageError('--data_dir %s holds other classes (%s) than the run being resumed in %s '
                         '(%s); use another --ckpt_dir, or the same data'
                         % (cfg['data_dir'], ', '.join(label_names), os.path.dirname(path),
                            ', '.join(map(str, saved['label_names']))))
    changed = [key for key in SCHEDULE_KEYS if saved[key] != cfg[key]]
    if changed:
        print('Note: %s changed since the run began: the learning-rate schedule is recomputed '
              'from here on' % ', '.join('--%s %s (was %s)' % (k, cfg[k], saved[k]) for k in changed),
              flush=True)
    towers = training_towers(cfg)
    if saved['towers'] != towers:
        print('Note: --towers %d (was %s): batch norm normalises groups of %d images from here on'
              % (towers, saved['towers'], math.ceil(cfg['batch_size'] / towers)), flush=True)
