"""Whether imported weights compute what their source computes: the import, built as
mobilenet.py builds it, against the source's own runtime (TFLite's interpreter, Keras), on the
same pictures. import_weights.py checks every import so before it writes it."""
import numpy as np
from PIL import Image
import tensorflow as tf

import data_utils
from importing import imported
import mobilenet

v1 = tf.compat.v1

# A quantized source's last feature map, relative to its largest value: the published 8-bit
# files measure 0.07 to 0.15 against their float imports; a wrong activation, 0.8.
QUANTIZED_TOLERANCE = 0.35
# A float source must be reproduced to this (probabilities; features relative to their largest
# value): float32 arithmetic in another order differs by about 1e-6.
FLOAT_TOLERANCE = 1e-4


def probe_pictures(size, count=8, seed=0):
    """float32 [count, size, size, 3] pixels 0..255: smooth random colour fields with grain, so
    that every layer sees varied values (not a photo: the records use real ones)."""
    rng = np.random.RandomState(seed)
    coarse = rng.randint(0, 256, (count, 6, 6, 3)).astype(np.uint8)
    smooth = np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BICUBIC),
                                  np.float32) for c in coarse])
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.float32)


def imported_outputs(item, variables, pictures):
    """(probabilities or None, Conv2d_13_pointwise features) of the import on `pictures`, with
    `variables` ({slim name: array}) assigned, in mobilenet.py's inference graph."""
    settings = item.settings
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, [None] + list(pictures.shape[1:]))
        net = data_utils.normalize(images, settings['normalization'])
        _, end_points = mobilenet.mobilenet_v1(
            net, num_classes=item.num_classes or 0, is_training=False,
            min_depth=imported.MIN_DEPTH, depth_multiplier=settings['width'],
            conv_defs=mobilenet.STEMS[settings['stem']],
            use_explicit_padding=settings['use_explicit_padding'], global_pool=True,
            dropout_keep_prob=1.0, batch_norm_epsilon=imported.BATCH_NORM_EPSILON)
        names = {v.op.name: v for v in v1.global_variables()}
        missing = sorted(set(names) - set(variables))
        assert not missing, 'the import lacks %s' % missing[0]
        sess.run([names[name].assign(value) for name, value in variables.items() if name in names])
        fetches = [end_points['Conv2d_13_pointwise']]
        if item.num_classes:
            fetches.append(end_points['Predictions'])
        values = sess.run(fetches, {images: pictures})
    return (values[1] if item.num_classes else None), values[0]


def compare(item, variables, reference, pictures):
    """{'images', 'top1_agree', 'max_probability_difference', 'max_feature_difference'} of the
    import against `reference` (pixels -> (probabilities or None, features)) on `pictures`;
    the feature difference is relative to the source's largest feature value."""
    probs, features = imported_outputs(item, variables, pictures)
    source_probs, source_features = reference(pictures)
    result = dict(images=len(pictures), max_feature_difference=float(
        np.max(np.abs(features - source_features)) / max(float(np.max(np.abs(source_features))),
                                                         1e-12)))
    if probs is not None and source_probs is not None:
        result.update(top1_agree=int(np.sum(probs.argmax(1) == source_probs.argmax(1))),
                      max_probability_difference=float(np.max(np.abs(probs - source_probs))))
    return result


def describe(result):
    parts = []
    if 'top1_agree' in result:
        parts.append('top-1 agrees on %d of %d, probabilities within %.1e'
                     % (result['top1_agree'], result['images'],
                        result['max_probability_difference']))
    parts.append('Conv2d_13_pointwise within %.1e of its largest value'
                 % result['max_feature_difference'])
    return '; '.join(parts)


def reproduces(result, quantized):
    """Whether the import computes its source: a float one within FLOAT_TOLERANCE; a quantized
    one (computed in integers there, in float here) close enough that only 8-bit rounding
    parts them."""
    if quantized:
        return result['max_feature_difference'] <= QUANTIZED_TOLERANCE and \
            result.get('top1_agree', result['images']) * 2 > result['images']
    return result['max_feature_difference'] <= FLOAT_TOLERANCE and \
        result.get('max_probability_difference', 0.0) <= FLOAT_TOLERANCE

