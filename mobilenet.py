"""MobileNetV1 in TF1 graph mode, with TF-Slim's API and variable names.

MobileNetV1 ("MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", Howard et al. 2017) is a 3x3 convolution followed by 13
depthwise-separable blocks (3x3 depthwise + 1x1 pointwise), each convolution
followed by batch norm and ReLU6.

This module is a drop-in for TF-Slim's `nets/mobilenet_v1.py`, which no longer
imports on current TensorFlow: the same functions, arguments, end points and
variable names (so published `mobilenet_v1_*.ckpt` files restore), built from
raw `tf.nn` ops and `tf.compat.v1.get_variable` only. What slim set through
`mobilenet_v1_arg_scope` (weight decay, initializer, batch-norm decay and
epsilon) are keyword arguments here, with slim's defaults.

Counts for the base network (conv weights; multiply-adds), as in slim's table:

    width 1.0,  224x224: 3,185,088 params, 567,716,352 MACs
    width 0.75, 128x128: 1,800,144 params, 106,002,432 MACs

`python3 mobilenet.py --depth_multiplier 0.75 --image_size 128` prints the
per-layer table for any width, input size and stem.
"""
import argparse
import collections
import functools
import math

import tensorflow as tf

v1 = tf.compat.v1

Conv = collections.namedtuple('Conv', ['kernel', 'stride', 'depth'])
DepthSepConv = collections.namedtuple('DepthSepConv', ['kernel', 'stride', 'depth'])

# The paper's Table 1; layer i is named Conv2d_i.
MOBILENETV1_CONV_DEFS = [
    Conv(kernel=[3, 3], stride=2, depth=32),
    DepthSepConv(kernel=[3, 3], stride=1, depth=64),
    DepthSepConv(kernel=[3, 3], stride=2, depth=128),
    DepthSepConv(kernel=[3, 3], stride=1, depth=128),
    DepthSepConv(kernel=[3, 3], stride=2, depth=256),
    DepthSepConv(kernel=[3, 3], stride=1, depth=256),
    DepthSepConv(kernel=[3, 3], stride=2, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=2, depth=1024),
    DepthSepConv(kernel=[3, 3], stride=1, depth=1024),
]

# For 32x32 inputs: a stride-1 stem keeps a 2x2 final feature map instead of 1x1
# (about 4x the multiply-adds). Same variables, so checkpoints move between stems.
CIFAR_CONV_DEFS = [Conv(kernel=[3, 3], stride=1, depth=32)] + MOBILENETV1_CONV_DEFS[1:]

STEMS = {'imagenet': MOBILENETV1_CONV_DEFS, 'cifar': CIFAR_CONV_DEFS}

# How a 1x1 convolution is computed: the same [1, 1, Cin, Cout] variable either way, so
# checkpoints move between them. 'matmul' multiplies the [pixels, Cin] matrix by the filter:
# without oneDNN, TensorFlow's CPU gradient of a 1x1 Conv2D on a small map is up to 70x slower
# than the same matmul. Deployment graphs keep Conv2D, which TFLite and OpenCV read best.
POINTWISE = ('conv2d', 'matmul')


def _pointwise_conv(net, weights, pointwise):
    if pointwise == 'conv2d':
        return tf.nn.conv2d(net, weights, [1, 1, 1, 1], 'SAME')
    cin, cout = weights.shape[2], weights.shape[3]
    out = tf.matmul(tf.reshape(net, [-1, cin]), tf.reshape(weights, [cin, cout]))
    spatial = net.shape[1:3]
    shape = [-1] + spatial.as_list() + [cout] if spatial.is_fully_defined() else \
        tf.concat([tf.shape(net)[:-1], [cout]], 0)
    return tf.reshape(out, shape)


def _check_pointwise(pointwise):
    if pointwise not in POINTWISE:
        raise ValueError("pointwise must be 'conv2d' or 'matmul', got %r; 'matmul' trains faster "
                         'on CPUs without oneDNN, both compute the same.' % (pointwise,))


def softmax(logits, scope=None):
    """Softmax over the last axis, named like slim's: `<scope>/Reshape_1` is the output."""
    with tf.name_scope(scope or 'Softmax'):
        flat = tf.reshape(logits, [-1, logits.shape[-1]])
        # A static target shape where known: importers such as OpenCV's cannot run Shape ops.
        shape = logits.shape[1:]
        target = [-1] + shape.as_list() if shape.is_fully_defined() else tf.shape(logits)
        return tf.reshape(tf.nn.softmax(flat), target)


def model_collections(*extra):
    """As slim.model_variable: every variable of the network is in MODEL_VARIABLES too. A new
    list each call: tf.distribute appends TRAINABLE_VARIABLES to the list it is given, and a
    shared one would make every later variable trainable, batch-norm statistics included."""
    return [v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES, *extra]


def weights_variable(name, shape, stddev, weight_decay):
    """A model variable of conv weights (in the model collections, L2-regularised as slim's)."""
    # stddev None: He initialisation, which trains from scratch better than slim's fixed 0.09.
    if stddev is None:
        init = v1.variance_scaling_initializer(2.0, mode='fan_in', distribution='truncated_normal')
    else:
        init = v1.truncated_normal_initializer(stddev=stddev)
    regularizer = None
    if weight_decay:
        # slim.l2_regularizer(scale) is scale * sum(w**2) / 2.
        regularizer = lambda w: tf.multiply(weight_decay, tf.nn.l2_loss(w), name='l2_loss')
    return v1.get_variable(name, shape, tf.float32, init, regularizer,
                           collections=model_collections())


def batch_norm(net, is_training, decay, epsilon):
    """slim's batch norm (scale and centre) under 'BatchNorm/': batch statistics and moving
    averages updated through UPDATE_OPS in training, the moving statistics otherwise."""
    channels = net.shape[-1]
    with v1.variable_scope('BatchNorm'):
        beta = v1.get_variable('beta', [channels], initializer=v1.zeros_initializer(),
                               collections=model_collections())
        gamma = v1.get_variable('gamma', [channels], initializer=v1.ones_initializer(),
                                collections=model_collections())

        def statistic(name, initializer):
            # Under tf.distribute each replica updates its own moving statistics from its own
            # batch (no all-reduce a layer); the chief's are the ones saved, as slim's first
            # clone's.
            return v1.get_variable(
                name, [channels], initializer=initializer, trainable=False,
                collections=model_collections(v1.GraphKeys.MOVING_AVERAGE_VARIABLES),
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        moving_mean = statistic('moving_mean', v1.zeros_initializer())
        moving_variance = statistic('moving_variance', v1.ones_initializer())
        if not is_training:
            net, _, _ = v1.nn.fused_batch_norm(net, gamma, beta, moving_mean, moving_variance,
                                               epsilon=epsilon, is_training=False)
            return net
        net, mean, variance = v1.nn.fused_batch_norm(net, gamma, beta, epsilon=epsilon,
                                                     is_training=True)
        # As slim: the caller runs UPDATE_OPS with the train op.
        for var, value in ((moving_mean, mean), (moving_variance, variance)):
            update = v1.assign_sub(var, (var - value) * (1.0 - decay), name=var.op.name.split('/')[-1] + '_update')
            v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, update)
        return net


def in_scopes(name, scopes):
    """Whether a variable or scope name falls under one of `scopes`; None means every name does.
    A scope matches whole parts of a name, up to a '/' or '_': MobilenetV1/Conv2d_1 is layer 1
    (Conv2d_1_depthwise and Conv2d_1_pointwise), not Conv2d_10 to 13 as slim's prefixes were."""
    return scopes is None or any(
        name.startswith(scope) and (scope.endswith(('/', '_')) or name[len(scope):len(scope) + 1]
                                    in ('', '/', '_'))
        for scope in scopes)


def _fixed_padding(inputs, kernel_size, rate=1):
    """Pads like SAME would for stride 1, so strided convs pad the same in every runtime."""
    effective = [k + (k - 1) * (rate - 1) for k in kernel_size]
    pads = [((k - 1) // 2, (k - 1) - (k - 1) // 2) for k in effective]
    return tf.pad(inputs, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])


def mobilenet_v1_base(inputs, final_endpoint='Conv2d_13_pointwise', min_depth=8,
                      depth_multiplier=1.0, conv_defs=None, output_stride=None,
                      use_explicit_padding=False, scope=None, is_training=True,
                      weight_decay=0.00004, stddev=0.09, regularize_depthwise=False,
                      batch_norm_decay=0.9997, batch_norm_epsilon=0.001, pointwise='conv2d',
                      trainable_scopes=None, freeze_batch_norm=False):
    """MobileNetV1 up to `final_endpoint`, for use as a backbone.

    Args as slim's, plus what slim's `mobilenet_v1_arg_scope` set: `is_training`
    (a Python bool: batch statistics and UPDATE_OPS if True, moving statistics if
    False), `weight_decay` (L2 on conv weights, added to REGULARIZATION_LOSSES),
    `stddev` (truncated-normal init; None for He init), `regularize_depthwise`,
    `batch_norm_decay`, `batch_norm_epsilon`; and `pointwise`, how 1x1 convolutions are
    computed ('conv2d' or 'matmul', see POINTWISE: same variables, same numbers); and
    `trainable_scopes`, None (every layer trains) or variable-scope prefixes as slim's
    --trainable_scopes: with is_training, batch norm outside them runs on its moving
    statistics and updates none, as Keras does for a non-trainable base; and
    `freeze_batch_norm`: with is_training, every batch norm so (its gamma and beta still
    train), Keras's advice for fine-tuning all layers of a pretrained network.

    Returns:
      (tensor at final_endpoint, dict of end points: Conv2d_0, Conv2d_1_depthwise,
      Conv2d_1_pointwise, ..., Conv2d_13_pointwise).
    """
    if depth_multiplier <= 0:
        raise ValueError('depth_multiplier must be greater than zero, got %r; '
                         'pass 1.0 for the full width or 0.25, 0.5, 0.75 for slimmer nets.'
                         % (depth_multiplier,))
    if output_stride not in (None, 8, 16, 32):
        raise ValueError('output_stride must be None, 8, 16 or 32, got %r.' % (output_stride,))
    if inputs.shape.rank != 4:
        raise ValueError('inputs must be a 4-D NHWC batch of images, got shape %s.' % inputs.shape)
    _check_pointwise(pointwise)
    conv_defs = conv_defs or MOBILENETV1_CONV_DEFS
    names = end_point_names(conv_defs)
    if final_endpoint not in names:
        raise ValueError('final_endpoint must be one of %s, got %r.' % (names, final_endpoint))

    def depth(d):
        return max(int(d * depth_multiplier), min_depth)

    padding = 'VALID' if use_explicit_padding else 'SAME'
    end_points = {}
    net = inputs

    def finish(end_point, net):
        # Batch norm trains where its own variables (scope/BatchNorm/...) are trained.
        training = is_training and not freeze_batch_norm and in_scopes(
            v1.get_variable_scope().name + '/BatchNorm/', trainable_scopes)
        net = batch_norm(net, training, batch_norm_decay, batch_norm_epsilon)
        net = tf.nn.relu6(net)
        end_points[end_point] = net
        return net

    with v1.variable_scope(scope, 'MobilenetV1', [inputs]):
        current_stride = 1
        rate = 1  # atrous rate once output_stride is reached
        for i, conv_def in enumerate(conv_defs):
            if output_stride is not None and current_stride == output_stride:
                layer_stride, layer_rate = 1, rate
                rate *= conv_def.stride
            else:
                layer_stride, layer_rate = conv_def.stride, 1
                current_stride *= conv_def.stride

            if isinstance(conv_def, Conv):
                end_point = 'Conv2d_%d' % i
                with v1.variable_scope(end_point):
                    if use_explicit_padding:
                        net = _fixed_padding(net, conv_def.kernel)
                    w = weights_variable('weights', conv_def.kernel + [net.shape[-1],
                                                                       depth(conv_def.depth)],
                                         stddev, weight_decay)
                    net = tf.nn.conv2d(net, w, [1, conv_def.stride, conv_def.stride, 1], padding)
                    net = finish(end_point, net)
                if end_point == final_endpoint:
                    return net, end_points
                continue

            end_point = 'Conv2d_%d_depthwise' % i
            with v1.variable_scope(end_point):
                if use_explicit_padding:
                    net = _fixed_padding(net, conv_def.kernel, layer_rate)
                w = weights_variable('depthwise_weights', conv_def.kernel + [net.shape[-1], 1],
                                     stddev, weight_decay if regularize_depthwise else 0.0)
                net = tf.nn.depthwise_conv2d(net, w, [1, layer_stride, layer_stride, 1], padding,
                                             dilations=[layer_rate, layer_rate])
                net = finish(end_point, net)
            if end_point == final_endpoint:
                return net, end_points

            end_point = 'Conv2d_%d_pointwise' % i
            with v1.variable_scope(end_point):
                w = weights_variable('weights', [1, 1, net.shape[-1], depth(conv_def.depth)],
                                     stddev, weight_decay)
                net = _pointwise_conv(net, w, pointwise)
                net = finish(end_point, net)
            if end_point == final_endpoint:
                return net, end_points
    raise AssertionError('unreachable: final_endpoint was validated above')


# Strides 8, 16 and 32: the maps MobileNet-YOLOv3 ports route to YOLOv3's three scales.
DETECTION_END_POINTS = ('Conv2d_5_pointwise', 'Conv2d_11_pointwise', 'Conv2d_13_pointwise')


def end_point_names(conv_defs=None):
    """The base's end points in order: Conv2d_0, Conv2d_1_depthwise, ..., Conv2d_13_pointwise."""
    return ['Conv2d_%d' % i if isinstance(d, Conv) else 'Conv2d_%d_%s' % (i, part)
            for i, d in enumerate(conv_defs or MOBILENETV1_CONV_DEFS)
            for part in (('',) if isinstance(d, Conv) else ('depthwise', 'pointwise'))]


def end_point_strides(conv_defs=None):
    """{end point: its output's stride over the input}."""
    strides, stride = {}, 1
    for i, conv_def in enumerate(conv_defs or MOBILENETV1_CONV_DEFS):
        stride *= conv_def.stride
        parts = ('',) if isinstance(conv_def, Conv) else ('_depthwise', '_pointwise')
        for part in parts:
            strides['Conv2d_%d%s' % (i, part)] = stride
    return strides


def end_point_depths(depth_multiplier=1.0, min_depth=8, conv_defs=None):
    """{end point: its channels} at a width (a depthwise layer keeps its input's channels)."""
    depths, channels = {}, 3
    for i, conv_def in enumerate(conv_defs or MOBILENETV1_CONV_DEFS):
        if isinstance(conv_def, DepthSepConv):
            depths['Conv2d_%d_depthwise' % i] = channels
        channels = max(int(conv_def.depth * depth_multiplier), min_depth)
        depths['Conv2d_%d' % i if isinstance(conv_def, Conv) else 'Conv2d_%d_pointwise' % i] = channels
    return depths


def mobilenet_v1_features(inputs, end_points=DETECTION_END_POINTS, scope='MobilenetV1',
                          conv_defs=None, **base_args):
    """The feature maps at `end_points` (names of mobilenet_v1_base's end points, any order),
    for a detector's backbone: the base is built up to the deepest of them, under slim's
    variable names, with mobilenet_v1_base's other arguments.

    Returns:
      [tensor of each end point, in the order given].
    """
    names = end_point_names(conv_defs)
    end_points = list(end_points)
    unknown = [name for name in end_points if name not in names]
    if not end_points or unknown or len(set(end_points)) < len(end_points):
        raise ValueError('end_points must name end points of the base (%s), each once, got %r; '
                         'detectors take %s' % (', '.join(names), list(end_points),
                                      ','.join(DETECTION_END_POINTS)))
    deepest = max(end_points, key=names.index)
    _, found = mobilenet_v1_base(inputs, final_endpoint=deepest, scope=scope,
                                 conv_defs=conv_defs, **base_args)
    return [found[name] for name in end_points]


def mobilenet_v1(inputs, num_classes=1000, dropout_keep_prob=0.999, is_training=True,
                 min_depth=8, depth_multiplier=1.0, conv_defs=None, prediction_fn=softmax,
                 spatial_squeeze=True, reuse=None, scope='MobilenetV1', global_pool=False,
                 use_explicit_padding=False, weight_decay=0.00004, stddev=0.09,
                 pointwise='conv2d', dropout_seed=None, **layer_args):
    """MobileNetV1 classifier, as slim's `mobilenet_v1`.

    Args:
      inputs: [batch, height, width, 3] float images, already preprocessed.
      num_classes: number of classes (1001 for slim's ImageNet checkpoints). If 0
        or None, the logits layer is omitted and the pooled features returned.
      dropout_keep_prob: keep probability of dropout before the logits.
      is_training: Python bool; batch norm and dropout in training mode.
      min_depth, depth_multiplier: width control, as `mobilenet_v1_base`.
      conv_defs: list of Conv/DepthSepConv; MOBILENETV1_CONV_DEFS by default,
        CIFAR_CONV_DEFS for a stride-1 stem.
      prediction_fn: logits -> predictions, called with scope='Predictions'.
      spatial_squeeze: squeeze the 1x1 spatial dims of the logits.
      reuse: reuse the variables (e.g. an eval tower beside the train tower).
      scope: variable scope; 'MobilenetV1' matches published checkpoints.
      global_pool: average pooling as a mean ('global_pool') rather than an AvgPool of
        the whole map ('AvgPool_1a', slim's name; slim's fixed 7x7 fails beyond 224).
      dropout_seed: None for TensorFlow's stateful dropout, or an int [2] tensor
        that the dropout mask is a function of (stateless dropout): keyed by the
        step, a resumed run draws the masks an uninterrupted one would.
      weight_decay, stddev, pointwise: as `mobilenet_v1_base`'s, for the logits
        layer too.
      layer_args: `mobilenet_v1_base`'s other layer settings (slim's arg scope):
        regularize_depthwise, batch_norm_decay, batch_norm_epsilon,
        trainable_scopes, freeze_batch_norm.

    Returns:
      (logits [batch, num_classes], end_points) where end_points also holds
      'AvgPool_1a' or 'global_pool', 'Logits' and 'Predictions'.
    """
    if inputs.shape.rank != 4:
        raise ValueError('inputs must be a 4-D NHWC batch of images, got shape %s.' % inputs.shape)
    if not 0.0 < dropout_keep_prob <= 1.0:
        raise ValueError('dropout_keep_prob must be in (0, 1], got %r; pass 1.0 for no dropout.'
                         % (dropout_keep_prob,))
    with v1.variable_scope(scope, 'MobilenetV1', [inputs], reuse=reuse) as var_scope:
        net, end_points = mobilenet_v1_base(
            inputs, scope=var_scope, min_depth=min_depth, depth_multiplier=depth_multiplier,
            conv_defs=conv_defs, use_explicit_padding=use_explicit_padding,
            is_training=is_training, weight_decay=weight_decay, stddev=stddev,
            pointwise=pointwise, **layer_args)
        with v1.variable_scope('Logits'):
            if global_pool:
                net = tf.reduce_mean(net, [1, 2], keepdims=True, name='global_pool')
                end_points['global_pool'] = net
            elif net.shape[1:3].is_fully_defined():
                # slim pools a fixed 7x7 (the map of a 224 input; smaller maps whole) and gives
                # no logits beyond; the whole map is pooled here, the same up to 224.
                net = tf.nn.avg_pool2d(net, [1] + net.shape[1:3].as_list() + [1], [1, 1, 1, 1],
                                       'VALID', name='AvgPool_1a')
                end_points['AvgPool_1a'] = net
            else:  # an input of any size
                net = tf.reduce_mean(net, [1, 2], keepdims=True, name='AvgPool_1a')
                end_points['AvgPool_1a'] = net
            if not num_classes:
                return net, end_points
            if is_training and dropout_keep_prob < 1.0:
                if dropout_seed is None:
                    net = tf.nn.dropout(net, rate=1.0 - dropout_keep_prob, name='Dropout_1b')
                else:
                    net = tf.nn.experimental.stateless_dropout(
                        net, rate=1.0 - dropout_keep_prob, seed=dropout_seed, name='Dropout_1b')
            with v1.variable_scope('Conv2d_1c_1x1'):
                w = weights_variable('weights', [1, 1, net.shape[-1], num_classes], stddev,
                                     weight_decay)
                b = v1.get_variable('biases', [num_classes], initializer=v1.zeros_initializer(),
                                    collections=model_collections())
                logits = tf.nn.bias_add(_pointwise_conv(net, w, pointwise), b)
            if spatial_squeeze:
                logits = tf.squeeze(logits, [1, 2], name='SpatialSqueeze')
        end_points['Logits'] = logits
        if prediction_fn:
            end_points['Predictions'] = prediction_fn(logits, scope='Predictions')
    return logits, end_points


mobilenet_v1.default_image_size = 224


def _partial(func, **kwargs):
    wrapped = functools.partial(func, **kwargs)
    functools.update_wrapper(wrapped, func)
    return wrapped


mobilenet_v1_075 = _partial(mobilenet_v1, depth_multiplier=0.75)
mobilenet_v1_050 = _partial(mobilenet_v1, depth_multiplier=0.50)
mobilenet_v1_025 = _partial(mobilenet_v1, depth_multiplier=0.25)


def layer_table(depth_multiplier=1.0, image_size=224, conv_defs=None, min_depth=8):
    """[(layer, params, multiply_adds)] of the base network's convolutions.

    Counted from the built graph: params are the conv weights (batch norm
    excluded, as in slim's table), multiply-adds are params x output pixels.
    """
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, [1, image_size, image_size, 3])
        mobilenet_v1_base(images, depth_multiplier=depth_multiplier, conv_defs=conv_defs,
                          min_depth=min_depth)
    rows = []
    for op in graph.get_operations():
        if op.type not in ('Conv2D', 'DepthwiseConv2dNative'):
            continue
        params = op.inputs[1].shape.num_elements()
        out_h, out_w = op.outputs[0].shape.as_list()[1:3]
        rows.append((op.name, params, params * out_h * out_w))
    return rows


def main():
    parser = argparse.ArgumentParser(description="Print MobileNetV1's per-layer parameter and "
                                                 'multiply-add counts (base network).')
    parser.add_argument('--depth_multiplier', type=float, default=1.0, help='width multiplier')
    parser.add_argument('--image_size', type=int, default=224, help='input height and width')
    parser.add_argument('--stem', choices=sorted(STEMS), default='imagenet',
                        help='imagenet: stride-2 first conv; cifar: stride 1')
    args = parser.parse_args()
    for name in ('depth_multiplier', 'image_size'):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            parser.error('--%s must be a finite number greater than 0, got %r'
                         % (name, getattr(args, name)))
    rows = layer_table(args.depth_multiplier, args.image_size, STEMS[args.stem])
    print('%-52s %12s %15s' % ('Layer', 'params', 'macs'))
    for name, params, macs in rows:
        print('%-52s %12s %15s' % (name + ':', format(params, ','), format(macs, ',')))
    print('%-52s %12s %15s' % ('Total:', format(sum(r[1] for r in rows), ','),
                               format(sum(r[2] for r in rows), ',')))


if __name__ == '__main__':
    main()
