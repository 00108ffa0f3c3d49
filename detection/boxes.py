"""Box geometry in TensorFlow: [..., 4] boxes as [xmin, ymin, xmax, ymax] in pixels.

IoU, and the two regression losses' overlap terms: GIoU (Rezatofighi et al. 2019: IoU less the
share of the enclosing box that neither covers) and CIoU (Zheng et al. 2020: IoU less the
centres' distance over the enclosing diagonal, less an aspect-ratio term).
"""
import math

import tensorflow as tf

_EPSILON = 1e-9


def area(boxes):
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0)


def _intersection_union(a, b):
    top_left = tf.maximum(a[..., :2], b[..., :2])
    bottom_right = tf.minimum(a[..., 2:], b[..., 2:])
    size = tf.maximum(bottom_right - top_left, 0.0)
    inter = size[..., 0] * size[..., 1]
    return inter, area(a) + area(b) - inter


def iou(a, b):
    """IoU of boxes `a` and `b`, broadcast against each other."""
    inter, union = _intersection_union(a, b)
    return inter / tf.maximum(union, _EPSILON)


def _enclosing(a, b):
    top_left = tf.minimum(a[..., :2], b[..., :2])
    bottom_right = tf.maximum(a[..., 2:], b[..., 2:])
    return bottom_right - top_left


def giou(a, b):
    inter, union = _intersection_union(a, b)
    enclosing = _enclosing(a, b)
    hull = enclosing[..., 0] * enclosing[..., 1]
    return inter / tf.maximum(union, _EPSILON) - (hull - union) / tf.maximum(hull, _EPSILON)


def ciou(a, b):
    inter, union = _intersection_union(a, b)
    overlap = inter / tf.maximum(union, _EPSILON)
    enclosing = _enclosing(a, b)
    diagonal = tf.reduce_sum(tf.square(enclosing), -1)
    centres = tf.reduce_sum(tf.square((a[..., :2] + a[..., 2:] - b[..., :2] - b[..., 2:]) / 2), -1)
    wa, ha = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
    wb, hb = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    v = (4 / math.pi ** 2) * tf.square(tf.atan(wa / tf.maximum(ha, _EPSILON)) -
                                       tf.atan(wb / tf.maximum(hb, _EPSILON)))
    alpha = tf.stop_gradient(v / tf.maximum(1 - overlap + v, _EPSILON))
    return overlap - centres / tf.maximum(diagonal, _EPSILON) - alpha * v
