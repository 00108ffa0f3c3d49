"""YOLOv3's three-scale head on MobileNetV1's feature maps, in raw tf.nn ops as mobilenet.py.

The deepest map goes through YOLOv3's block of five convolutions (1x1 D, 3x3 2D, 1x1 D,
3x3 2D, 1x1 D), then a 3x3 2D and the 1x1 prediction of A x (5 + classes) channels; the
block's output, reduced by a 1x1 to D/2 and upsampled x2 (nearest), is concatenated with the
next shallower map, whose block has depth D/2, and so on. Each convolution but the
predictions has batch norm and leaky ReLU (0.1), as YOLOv3's. The 'lite' head replaces every
3x3 convolution by a depthwise 3x3 and a pointwise 1x1 (MobileNet's separable form, about an
eighth of the multiply-adds), for devices.

Variables live under 'YoloV3/Scale_<stride>/...', so that --trainable_scopes YoloV3 trains
the head alone and --checkpoint_exclude_scopes YoloV3 starts a new one.
"""
import tensorflow as tf

import mobilenet

v1 = tf.compat.v1

HEADS = ('yolov3', 'lite')

SCOPE = 'YoloV3'

LEAKY_SLOPE = 0.1

# The objectness bias at the start: sigmoid(-4.6) = 1%, most cells hold nothing; without it the
# first steps are spent driving thousands of empty cells' scores down (as RetinaNet's prior).
OBJECTNESS_PRIOR_BIAS = -4.6


class _Layers:
    """The convolutions of one head, with its settings."""

    def __init__(self, is_training, weight_decay, batch_norm_decay, batch_norm_epsilon, lite,
                 train_batch_norm=True):
        self.is_training = is_training and train_batch_norm
        self.weight_decay = weight_decay
        self.decay, self.epsilon, self.lite = batch_norm_decay, batch_norm_epsilon, lite

    def conv(self, net, depth, kernel, name):
        with v1.variable_scope(name):
            if kernel == 3 and self.lite:
                with v1.variable_scope('Depthwise'):
                    w = mobilenet.weights_variable('depthwise_weights', [3, 3, net.shape[-1], 1],
                                                   None, 0.0)
                    net = self._activate(tf.nn.depthwise_conv2d(net, w, [1, 1, 1, 1], 'SAME'))
                kernel = 1
            w = mobilenet.weights_variable('weights', [kernel, kernel, net.shape[-1], depth], None,
                                           self.weight_decay)
            return self._activate(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'))

    def _activate(self, net):
        net = mobilenet.batch_norm(net, self.is_training, self.decay, self.epsilon)
        return tf.nn.leaky_relu(net, LEAKY_SLOPE)

    def predict(self, net, outputs, num_classes, name):
        with v1.variable_scope(name):
            w = mobilenet.weights_variable('weights', [1, 1, net.shape[-1], outputs], None,
                                           self.weight_decay)
            anchors = outputs // (5 + num_classes)
            prior = [0.0] * 4 + [OBJECTNESS_PRIOR_BIAS] + [0.0] * num_classes
            b = v1.get_variable('biases', [outputs], tf.float32,
                                tf.constant_initializer(prior * anchors),
                                collections=mobilenet.model_collections())
            return tf.nn.bias_add(tf.nn.conv2d(net, w, [1, 1, 1, 1], 'SAME'), b)


def upsample(net):
    """x2 nearest-neighbour upsampling (YOLOv3's), of static or dynamic sizes."""
    size = tf.shape(net)[1:3] * 2
    return v1.image.resize_nearest_neighbor(net, size)


def yolo_v3(features, strides, num_classes, anchors_per_scale=3, head='yolov3', depth=256,
            is_training=True, weight_decay=5e-4, batch_norm_decay=0.99, batch_norm_epsilon=1e-3,
            train_batch_norm=True, reuse=None, scope=SCOPE):
    """YOLOv3's predictions on `features` (maps of increasing stride, `strides`).

    Args:
      features: [B, H/s, W/s, C] maps, finest first (MobileNetV1's Conv2d_5/11/13_pointwise).
      strides: each map's stride, for the scope names.
      depth: the block depth D at the deepest map; D/2, D/4 at the finer ones.
      train_batch_norm: with is_training, False keeps the head's batch norm on its moving
        statistics (as --freeze_batch_norm).

    Returns:
      [B, H/s, W/s, anchors_per_scale, 5 + num_classes] raw predictions of each map, finest
      first: (tx, ty, tw, th, objectness logit, class logits).
    """
    if head not in HEADS:
        raise ValueError('head must be one of %s, got %r' % (', '.join(HEADS), head))
    layers = _Layers(is_training, weight_decay, batch_norm_decay, batch_norm_epsilon,
                     head == 'lite', train_batch_norm)
    outputs = [None] * len(features)
    channels = anchors_per_scale * (5 + num_classes)
    routed = None
    with v1.variable_scope(scope, reuse=reuse):
        for i in reversed(range(len(features))):
            d = max(depth >> (len(features) - 1 - i), 8)
            with v1.variable_scope('Scale_%d' % strides[i]):
                net = features[i]
                if routed is not None:
                    routed = layers.conv(routed, d, 1, 'Route')
                    net = tf.concat([upsample(routed), net], axis=3)
                for j, (kernel, multiple) in enumerate(((1, 1), (3, 2), (1, 1), (3, 2), (1, 1))):
                    net = layers.conv(net, d * multiple, kernel, 'Conv_%d' % j)
                routed = net
                net = layers.conv(net, 2 * d, 3, 'Conv_5')
                raw = layers.predict(net, channels, num_classes, 'Predictions')
                shape = tf.shape(raw)
                outputs[i] = tf.reshape(raw, tf.stack(
                    [shape[0], shape[1], shape[2], anchors_per_scale, 5 + num_classes]))
    return outputs
