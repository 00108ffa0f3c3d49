"""Published MobileNetV1 weights of other formats written as a checkpoint under TF-Slim's names:
what import_weights.py's sources share (checkpoints/from_tflite.py, from_keras.py and
slim_archives.py read the weights; this module names, checks and writes them).

A source gives an `Imported`: the 27 convolutions of the base in slim's order and layout, each
with its own batch norm or, where the file folded batch norm into the convolution, a bias; the
logits layer if it has one; the architecture it implies. A folded bias becomes batch norm that
does nothing but add it (gamma 1, beta the bias, moving mean 0, moving variance 1 - epsilon),
so that the checkpoint restores into slim's graph and trains on from there.
"""
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

import config
import mobilenet
from preflight import errors
from preflight import files

v1 = tf.compat.v1


# What every import is: an ImageNet-style network (stride-2 stem, [-1, 1] input) unless its
# source says otherwise; min_depth is slim's 8 in every published model.
MIN_DEPTH = 8
BATCH_NORM_EPSILON = 0.001
# slim's evaluation view of an ImageNet photo: its central 87.5%, resized.
IMAGENET_CENTRAL_FRACTION = 0.875


@dataclasses.dataclass
class Layer:
    kernel: np.ndarray              # slim's layout: [h, w, in, out], depthwise [h, w, in, 1]
    bias: np.ndarray = None         # batch norm folded in: the bias it left
    batch_norm: dict = None         # else {gamma, beta, moving_mean, moving_variance}


@dataclasses.dataclass
class Imported:
    layers: list                    # 27 Layer, Conv2d_0 to Conv2d_13_pointwise
    logits: tuple                   # (kernel [1, 1, in, classes], biases [classes]) or None
    settings: dict                  # config.ARCHITECTURE_KEYS' values
    source: str                     # where from, in words
    labels: list = None             # class names the source carries, or None
    central_fraction: float = IMAGENET_CENTRAL_FRACTION
    quantized: bool = False         # weights stored as integers: close to the source, not equal
    notes: list = dataclasses.field(default_factory=list)

    @property
    def num_classes(self):
        return None if self.logits is None else int(self.logits[1].shape[0])

    @property
    def folded(self):
        return any(layer.batch_norm is None for layer in self.layers)


def width_of(channels):
    """The width multiplier whose Conv2d_13_pointwise has `channels` channels (1024 x width)."""
    return channels / 1024.0


def expected_shapes(settings, num_classes):
    """{slim variable name: shape} of MobileNetV1 with these settings (logits with num_classes,
    none when it is None), from the graph mobilenet.py builds: the one truth of names and shapes."""
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [1, settings['image_size'], settings['image_size'], 3])
        if num_classes:
            mobilenet.mobilenet_v1(images, num_classes, is_training=False, min_depth=MIN_DEPTH,
                                   depth_multiplier=settings['width'], global_pool=True,
                                   conv_defs=mobilenet.STEMS[settings['stem']])
        else:
            mobilenet.mobilenet_v1_base(images, is_training=False, min_depth=MIN_DEPTH,
                                        depth_multiplier=settings['width'], scope='MobilenetV1',
                                        conv_defs=mobilenet.STEMS[settings['stem']])
        return {v.op.name: v.shape.as_list() for v in v1.global_variables()}


def check_channels(item, what):
    """ModelError naming the first layer whose channels are not those of a MobileNetV1 of the
    width its last layer implies (another network, or another min_depth)."""
    expected = expected_shapes(item.settings, item.num_classes)
    for name, layer in zip(mobilenet.end_point_names(), item.layers):
        key = 'MobilenetV1/%s/%s' % (name, 'depthwise_weights' if 'depthwise' in name else 'weights')
        if list(layer.kernel.shape) != expected[key]:
            raise errors.ModelError(
                '%s: its layer %s has a %s kernel where MobileNetV1 of width %g has %s; not a '
                'MobileNetV1 this importer reads' % (what, name, list(layer.kernel.shape),
                                                     item.settings['width'], expected[key]))


def slim_variables(item):
    """{slim variable name: float32 array} of an import."""
    out = {}
    for name, layer in zip(mobilenet.end_point_names(), item.layers):
        scope = 'MobilenetV1/' + name
        kernel = 'depthwise_weights' if 'depthwise' in name else 'weights'
        out['%s/%s' % (scope, kernel)] = layer.kernel
        norm = layer.batch_norm
        if norm is None:
            channels = layer.bias.shape[0]
            norm = dict(gamma=np.ones(channels), beta=layer.bias, moving_mean=np.zeros(channels),
                        moving_variance=np.full(channels, 1.0 - BATCH_NORM_EPSILON))
        for key, value in norm.items():
            out['%s/BatchNorm/%s' % (scope, key)] = value
    if item.logits is not None:
        out['MobilenetV1/Logits/Conv2d_1c_1x1/weights'] = item.logits[0]
        out['MobilenetV1/Logits/Conv2d_1c_1x1/biases'] = item.logits[1]
    return {name: np.asarray(value, np.float32) for name, value in out.items()}


def run_settings(item):
    """What the import's PREFIX.json holds: the architecture and class names, as a run's
    config.json does, and where the weights came from."""
    settings = dict(item.settings, min_depth=MIN_DEPTH, batch_norm_epsilon=BATCH_NORM_EPSILON,
                    central_fraction=item.central_fraction, imported_from=item.source,
                    num_classes=item.num_classes)
    if item.labels:
        settings['label_names'] = list(item.labels)
    if item.folded:
        settings['batch_norm'] = ('folded into the weights by the source: identity batch norm '
                                  '(gamma 1, beta the folded bias, mean 0, variance 1 - epsilon)')
    return settings


def write(prefix, variables, settings):
    """PREFIX.index, PREFIX.data-00000-of-00001 and PREFIX.json, all or nothing: written in a
    hidden folder beside them, moved into place with the .index last (what makes a checkpoint
    visible). No "checkpoint" index file: the folder may be a run's, whose own that is."""
    folder, base = os.path.split(os.path.abspath(prefix))
    with files.staged_folder(folder, prefix='.import-', last=(base + '.index',)) as staging:
        with tf.Graph().as_default():
            saved = {name: tf.Variable(value, name=name) for name, value in variables.items()}
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                v1.train.Saver(saved).save(sess, os.path.join(staging, base),
                                           write_meta_graph=False, write_state=False)
        with open(os.path.join(staging, base + '.json'), 'w') as f:
            json.dump(settings, f, indent=1, sort_keys=True)
            f.write('\n')


def default_architecture(**given):
    """config.ARCHITECTURE_KEYS' values of an ImageNet model, with `given` on top."""
    settings = dict(width=1.0, min_depth=MIN_DEPTH, stem='imagenet', use_explicit_padding=False,
                    image_size=224, normalization='inception')
    settings.update(given)
    assert set(settings) == set(config.ARCHITECTURE_KEYS)
    return settings
