"""The model as trained: preprocessing, MobileNetV1, and towers (slim's clones) sharing one batch."""
import tensorflow as tf

import data_utils
import mobilenet
from pipelines import order
from preflight.errors import UsageError

v1 = tf.compat.v1


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
                freeze_batch_norm=is_training and cfg.get('freeze_batch_norm', False),
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


def build_features(images, cfg, end_points):
    """[feature map at each of `end_points`] of MobileNetV1's base on raw 0..255 images, for
    inference (moving statistics): a detector's backbone, preprocessing in the graph."""
    net = data_utils.normalize(images, cfg['normalization'])
    return mobilenet.mobilenet_v1_features(
        net, end_points, is_training=False, min_depth=cfg['min_depth'],
        depth_multiplier=cfg['width'], conv_defs=mobilenet.STEMS[cfg['stem']],
        use_explicit_padding=cfg['use_explicit_padding'],
        batch_norm_epsilon=cfg['batch_norm_epsilon'])


# The graph collection of the variables a training step updates.
TRAINED = 'trained_variables'


def trained_variables(cfg, model_variables):
    """The trainable ones of `model_variables` under --trainable_scopes (all where it is
    empty), said once on the console when it chooses; UsageError when it holds none."""
    scopes = scope_list(cfg['trainable_scopes'])
    names = {v.op.name for v in model_variables}
    trained = [v for v in v1.trainable_variables() if v.op.name in names
               and mobilenet.in_scopes(v.op.name, scopes)]
    if not trained:
        raise UsageError('--trainable_scopes %s holds no trainable variable (only batch-norm '
                         'statistics?)' % cfg['trainable_scopes'])
    if scopes and not v1.get_collection(TRAINED):  # said once, not again for each replica
        layers = sorted({'/'.join(v.op.name.split('/')[:2]) for v in trained})
        print('Training %d of the %d model variables (--trainable_scopes %s): %s' % (
            len(trained), len(model_variables), cfg['trainable_scopes'], ', '.join(layers)),
            flush=True)
    for variable in trained:
        v1.add_to_collection(TRAINED, variable)
    return trained


def scope_list(text):
    """slim's comma-separated scopes as a list (matched as mobilenet.in_scopes matches them);
    '' is None (every variable)."""
    scopes = [scope.strip() for scope in text.split(',') if scope.strip()]
    return scopes or None


def check_scopes(flag, text, variables):
    """UsageError for a scope of `flag` that names no model variable (a typo trains all)."""
    names = [v.op.name for v in variables]
    for scope in scope_list(text) or []:
        if not any(mobilenet.in_scopes(name, [scope]) for name in names):
            raise UsageError('--%s %s names no variable of the model; scopes look like '
                             'MobilenetV1/Logits, MobilenetV1/Conv2d_13_pointwise or '
                             'MobilenetV1/Conv2d_1' % (flag, scope))


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
    shares = (order.share(size + padding, parts, tower) for tower in range(parts))
    return [images[start:start + length] for start, length in shares], size


def build_detector(images, cfg, num_classes, is_training, reuse=None, getter=None,
                   end_points=None):
    """YOLOv3's raw predictions (detection/yolo_v3.py, finest first) on MobileNetV1's maps at
    `end_points` (cfg's detect_end_points) of raw 0..255 images; preprocessing in the graph.
    In training, --trainable_scopes holds as in the classifier's, and --freeze_batch_norm for
    the backbone alone: the head is new, its batch norm learns its statistics."""
    from detection import yolo_v3
    end_points = end_points or detection_end_points(cfg)
    conv_defs = mobilenet.STEMS[cfg['stem']]
    strides = mobilenet.end_point_strides(conv_defs)
    scopes = scope_list(cfg.get('trainable_scopes', '')) if is_training else None
    frozen = is_training and cfg.get('freeze_batch_norm', False)
    net = data_utils.normalize(images, cfg['normalization'])
    with v1.variable_scope(v1.get_variable_scope(), custom_getter=getter, reuse=reuse):
        features = mobilenet.mobilenet_v1_features(
            net, end_points, is_training=is_training, min_depth=cfg['min_depth'],
            depth_multiplier=cfg['width'], conv_defs=conv_defs,
            use_explicit_padding=cfg['use_explicit_padding'], weight_decay=cfg['weight_decay'],
            stddev=cfg['init_stddev'] or None, regularize_depthwise=cfg['regularize_depthwise'],
            batch_norm_decay=cfg['batch_norm_decay'], batch_norm_epsilon=cfg['batch_norm_epsilon'],
            trainable_scopes=scopes, freeze_batch_norm=frozen)
        return yolo_v3.yolo_v3(
            features, [strides[name] for name in end_points], num_classes,
            head=cfg['head'], depth=cfg['head_depth'], is_training=is_training,
            weight_decay=cfg['weight_decay'], batch_norm_decay=cfg['batch_norm_decay'],
            batch_norm_epsilon=cfg['batch_norm_epsilon'],
            train_batch_norm=mobilenet.in_scopes(yolo_v3.SCOPE + '/', scopes))


def detection_end_points(cfg):
    """cfg's detect_end_points as a list, finest first."""
    return [name.strip() for name in cfg['detect_end_points'].split(',') if name.strip()]
