"""The detector's parts: the head's shapes and names, anchors, the loss's targets, decoding with
per-class suppression, and average precision against pycocotools and by hand."""
import math

import numpy as np
import pytest
import tensorflow as tf

from datasets import detection_layouts
from detection import anchors
from detection import average_precision
from detection import boxes as box_ops
from detection import loss
from detection import postprocess
from detection import yolo_v3

v1 = tf.compat.v1
ANCHORS = anchors.sort_by_area(anchors.YOLOV3).tolist()


def _run(fetches, feed=None):
    """sess.run of fetches built in the current graph (a test's tf.Graph().as_default())."""
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        return sess.run(fetches, feed)


def _graph(build):
    """The values of what build() makes, in a graph of its own."""
    with tf.Graph().as_default():
        return _run(build())


@pytest.mark.parametrize('head', yolo_v3.HEADS)
def test_head_predicts_three_scales_under_its_own_scope(head):
    with tf.Graph().as_default():
        features = [tf.zeros([2, 8, 8, 24]), tf.zeros([2, 4, 4, 48]), tf.zeros([2, 2, 2, 96])]
        outputs = yolo_v3.yolo_v3(features, [8, 16, 32], num_classes=5, head=head, depth=32,
                                  is_training=False)
        shapes = [o.shape for o in _run(outputs)]
        names = [v.op.name for v in v1.global_variables()]
    assert shapes == [(2, 8, 8, 3, 10), (2, 4, 4, 3, 10), (2, 2, 2, 3, 10)]
    assert all(name.startswith('YoloV3/Scale_') for name in names)
    assert 'YoloV3/Scale_32/Predictions/biases' in names
    assert ('YoloV3/Scale_32/Conv_1/Depthwise/depthwise_weights' in names) == (head == 'lite')


def test_objectness_starts_at_its_prior():
    with tf.Graph().as_default():
        outputs = yolo_v3.yolo_v3([tf.zeros([1, 2, 2, 8])], [32], num_classes=2, depth=8,
                                  is_training=False)
        raw = _run(outputs)[0]
    np.testing.assert_allclose(raw[..., 4], yolo_v3.OBJECTNESS_PRIOR_BIAS, atol=1e-5)


def test_kmeans_finds_the_clusters_of_box_shapes():
    random = np.random.RandomState(0)
    centres = np.array([[10, 20], [60, 40], [200, 150]], np.float64)
    sizes = np.concatenate([c * random.uniform(0.95, 1.05, (50, 2)) for c in centres])
    found = np.array(anchors.kmeans(sizes, 3))
    np.testing.assert_allclose(found, centres, rtol=0.08)
    assert anchors.mean_best_iou(sizes, found) > 0.9


def test_anchor_flags():
    assert anchors.resolve('yolov3', None, 416, 9) == ANCHORS
    assert anchors.resolve('30,20 10,10 5,8', None, 416, 3) == [[5, 8], [10, 10], [30, 20]]
    with pytest.raises(Exception, match='gives 2 pairs'):
        anchors.resolve('1,2 3,4', None, 416, 3)
    with pytest.raises(Exception, match="'yolov3', 'kmeans' or pairs"):
        anchors.resolve('big', None, 416, 3)


def test_giou_and_ciou_are_iou_for_the_same_box_and_negative_apart():
    def build():
        a = tf.constant([[0.0, 0.0, 10.0, 10.0]])
        same, apart = tf.constant([[0.0, 0.0, 10.0, 10.0]]), tf.constant([[20.0, 0.0, 30.0, 10.0]])
        return [f(a, b) for b in (same, apart) for f in (box_ops.iou, box_ops.giou, box_ops.ciou)]
    values = _graph(build)
    np.testing.assert_allclose([v[0] for v in values[:3]], [1, 1, 1], atol=1e-6)
    assert values[3][0] == 0 and values[4][0] == pytest.approx(-1 / 3, abs=1e-6)
    assert values[5][0] < 0


def _encode(box, stride, anchor, grid):
    """The raw (tx, ty, tw, th) that decode to `box` in cell `grid` with `anchor`."""
    cx, cy = (box[0] + box[2]) / 2 / stride, (box[1] + box[3]) / 2 / stride
    logit = lambda p: math.log(p / (1 - p))
    return [logit(cx - grid[0]), logit(cy - grid[1]), math.log((box[2] - box[0]) / anchor[0]),
            math.log((box[3] - box[1]) / anchor[1])]


@pytest.mark.parametrize('box_loss', loss.BOX_LOSSES)
def test_loss_is_small_for_a_prediction_at_the_true_box_and_large_elsewhere(box_loss):
    """A 60x45 box (anchor 62x45, the fifth: scale 16, anchor 1) centred at (100, 70) in a 128
    input: the cell (6, 4) of the stride-16 map. Raw outputs that decode exactly to it, with
    certain objectness and class, cost almost nothing; the same raws one cell off cost more."""
    box = [70.0, 47.5, 130.0, 92.5]
    with tf.Graph().as_default():
        def outputs(cell):
            raw = [np.full((1, s, s, 3, 7), 0.0, np.float32) for s in (16, 8, 4)]
            for r in raw:
                r[..., 4] = -20.0  # no object anywhere ...
                r[..., 5:] = -20.0
            t = _encode(box, 16, ANCHORS[4], (6, 4))
            raw[1][0, cell[1], cell[0], 1, :4] = t
            raw[1][0, cell[1], cell[0], 1, 4] = 20.0  # ... but here
            raw[1][0, cell[1], cell[0], 1, 5 + 1] = 20.0  # class 1 of 2
            return [tf.constant(r) for r in raw]
        labels = tf.constant([[box + [1.0], [-1.0] * 5]])

        def total(cell):
            return loss.yolo_loss(outputs(cell), labels[..., :4], tf.cast(labels[..., 4], tf.int32),
                                  ANCHORS, [8, 16, 32], 2, (128, 128), box_loss=box_loss)
        (right, right_terms), (wrong, _) = _run([total((6, 4)), total((5, 4))])
    if box_loss == 'yolov3':
        # Cross-entropy towards the offsets 0.25 and 0.375 is at least their entropy.
        entropy = sum(-p * math.log(p) - (1 - p) * math.log(1 - p) for p in (0.25, 0.375))
        assert right_terms['box'] == pytest.approx((2 - 60 * 45 / 128 ** 2) * entropy, rel=1e-4)
        right -= right_terms['box']
    assert right < 1e-3, right_terms
    assert wrong > 10


def test_decode_and_select_keep_one_box_per_object_and_class():
    """Two overlapping boxes of one class: the better stays. The same place in another class:
    kept (suppression is per class). Padding past the count is zero."""
    boxes = [[10.0, 10.0, 50.0, 50.0], [12.0, 12.0, 52.0, 52.0], [10.0, 10.0, 50.0, 50.0],
             [100.0, 100.0, 120.0, 120.0]]
    scores = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.001, 0.0]]
    found_boxes, found_scores, classes, count = _graph(lambda: postprocess.select(
        tf.constant(boxes), tf.constant(scores), score_threshold=0.01, iou_threshold=0.5,
        max_detections=5))
    assert count == 2
    np.testing.assert_allclose(found_scores, [0.9, 0.7, 0, 0, 0], atol=1e-6)
    assert classes[:2].tolist() == [0, 1]
    np.testing.assert_allclose(found_boxes[:2], [[10, 10, 50, 50]] * 2)
    assert not found_boxes[2:].any()


def test_decode_puts_a_zero_prediction_on_its_cell_centre_with_its_anchor():
    raw = np.zeros((1, 2, 2, 3, 6), np.float32)
    boxes, scores = _graph(lambda: postprocess.decode([tf.constant(raw)], ANCHORS[:3], [32]))
    assert boxes.shape == (1, 12, 4) and scores.shape == (1, 12, 1)
    # Cell (x 1, y 0), anchor 2 (33x23): centre (48, 16).
    np.testing.assert_allclose(boxes[0, (0 * 2 + 1) * 3 + 2], [48 - 16.5, 16 - 11.5, 48 + 16.5,
                                                               16 + 11.5], atol=1e-4)
    np.testing.assert_allclose(scores, 0.25)


def _split(boxes, classes, ignored=None, size=(100, 100)):
    return detection_layouts.Boxes(
        ['a.png', 'b.png'][:len(boxes)], [size] * len(boxes),
        [np.array(b, np.float32).reshape(-1, 4) for b in boxes],
        [np.array(c, np.int64) for c in classes],
        [np.array(i if ignored else [False] * len(c), bool)
         for i, c in zip(ignored or [None] * len(classes), classes)])


def _detection(image, category, box, score):
    x1, y1, x2, y2 = box
    return dict(image_id=image, category_id=category, bbox=[x1, y1, x2 - x1, y2 - y1],
                score=score)


def test_voc_ap_by_hand():
    """Two true boxes; detections: hit (0.9), miss (0.8), hit (0.7): precision 1, 1/2, 2/3 at
    recall 1/2, 1/2, 1: all-point AP = 1/2 * 1 + 1/2 * 2/3."""
    split = _split([[[0, 0, 10, 10]], [[50, 50, 90, 90]]], [[0], [0]])
    found = [_detection(1, 1, [0, 0, 10, 10], 0.9), _detection(1, 1, [60, 60, 70, 70], 0.8),
             _detection(2, 1, [50, 50, 88, 90], 0.7)]
    mean, per_class = average_precision.voc_map(found, split, [1])
    assert mean == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert per_class == [pytest.approx(mean)]


def test_a_difficult_box_is_neither_hit_nor_missed():
    split = _split([[[0, 0, 10, 10], [50, 50, 90, 90]]], [[0, 0]], ignored=[[False, True]])
    found = [_detection(1, 1, [50, 50, 90, 90], 0.95), _detection(1, 1, [0, 0, 10, 10], 0.9)]
    assert average_precision.voc_map(found, split, [1])[0] == pytest.approx(1.0)
    assert average_precision.voc_map(found[1:], split, [1])[0] == pytest.approx(1.0)


def test_coco_metrics_by_pycocotools_perfect_and_empty():
    split = _split([[[0, 0, 10, 10]], [[50, 50, 90, 90], [10, 10, 40, 30]]], [[0], [0, 1]])
    found = [_detection(1, 1, [0, 0, 10, 10], 0.9), _detection(2, 1, [50, 50, 90, 90], 0.8),
             _detection(2, 2, [10, 10, 40, 30], 0.7)]
    perfect = average_precision.coco_metrics(found, split, ['a', 'b'], [1, 2])
    assert perfect['AP'] == pytest.approx(1.0) and perfect['AR100'] == pytest.approx(1.0)
    shifted = [dict(d, bbox=[d['bbox'][0] + 0.2 * d['bbox'][2]] + d['bbox'][1:]) for d in found]
    partial = average_precision.coco_metrics(shifted, split, ['a', 'b'], [1, 2])
    assert partial['AP50'] == pytest.approx(1.0) and partial['AP75'] < 1.0
    assert average_precision.coco_metrics([], split, ['a', 'b'], [1, 2])['AP'] == 0.0
