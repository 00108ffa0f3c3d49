"""YOLOv3's loss, its targets built in the graph from each image's boxes.

Each box is assigned to the one anchor (of all nine) whose shape fits it best, on the scale
that anchor belongs to, in the grid cell of its centre: that cell-anchor is positive. Terms,
summed over the batch and divided by its images (YOLOv3's normalisation):
  box          at positives: 1 - GIoU (or CIoU) of the decoded box and the true one, weighted
               2 - (true area / input area) so small boxes count more, as YOLOv3's scale; or
               'yolov3': its own (cross-entropy of the centre offsets, squared error of the
               log sizes, same weight);
  objectness   cross-entropy: 1 at positives; 0 at the rest, except those whose decoded box
               overlaps a true box by IoU > --ignore_threshold (YOLOv3: not penalised, they
               are good boxes of another anchor) or a 'difficult'/'iscrowd' one;
  classes      at positives, one sigmoid cross-entropy a class (YOLOv3's multi-label form).
"""
import tensorflow as tf

from detection import boxes as box_ops
from detection import postprocess

BOX_LOSSES = ('giou', 'ciou', 'yolov3')

# The class of a box that is neither learned nor pushed to background: VOC's 'difficult' and
# COCO's 'iscrowd' (a prediction on one is not penalised, as their scoring ignores them).
IGNORE_REGION = -2


def _cross_entropy(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def yolo_loss(outputs, true_boxes, true_classes, anchors, strides, num_classes, input_size,
              ignore_threshold=0.5, box_loss='giou'):
    """(total loss, {'box', 'objectness', 'classes': each term}) of a batch.

    outputs: yolo_v3's raw predictions, finest first. true_boxes: [B, M, 4] in input pixels,
    true_classes: int32 [B, M], -1 where there is no box (padding), IGNORE_REGION for a region
    that only takes negatives' penalty away. anchors: [[w, h]] * 9, three
    a scale, finest first. input_size: (height, width) of the batch's images (tensors or ints).
    """
    if box_loss not in BOX_LOSSES:
        raise ValueError('box_loss must be one of %s, got %r' % (', '.join(BOX_LOSSES), box_loss))
    anchors_t = tf.constant(anchors, tf.float32)
    per_scale = len(anchors) // len(outputs)
    valid = true_classes >= 0
    present = valid | tf.equal(true_classes, IGNORE_REGION)
    batch = tf.shape(true_boxes)[0]
    images = tf.cast(batch, tf.float32)
    sizes = true_boxes[..., 2:4] - true_boxes[..., 0:2]
    centres = (true_boxes[..., 0:2] + true_boxes[..., 2:4]) / 2
    # The anchor of each box: best IoU of shapes sharing a centre.
    inter = (tf.minimum(sizes[..., None, 0], anchors_t[:, 0]) *
             tf.minimum(sizes[..., None, 1], anchors_t[:, 1]))
    shape_iou = inter / (sizes[..., None, 0] * sizes[..., None, 1] +
                         anchors_t[:, 0] * anchors_t[:, 1] - inter + 1e-9)
    best = tf.argmax(shape_iou, -1, output_type=tf.int32)
    input_area = tf.cast(input_size[0] * input_size[1], tf.float32)
    terms = dict(box=0.0, objectness=0.0, classes=0.0)
    for i, (raw, stride) in enumerate(zip(outputs, strides)):
        scale_anchors = anchors[i * per_scale:(i + 1) * per_scale]
        pred_boxes, objectness, class_logits = postprocess.decode_scale(raw, scale_anchors,
                                                                        stride)
        shape = tf.shape(raw)
        height, width = shape[1], shape[2]
        here = tf.where(valid & tf.equal(best // per_scale, i))  # [K, 2]: (image, box)
        box = tf.gather_nd(true_boxes, here)
        centre = tf.gather_nd(centres, here)
        cell = tf.cast(tf.floor(centre / float(stride)), tf.int32)
        cell_x = tf.clip_by_value(cell[:, 0], 0, width - 1)
        cell_y = tf.clip_by_value(cell[:, 1], 0, height - 1)
        anchor = tf.gather_nd(best, here) - i * per_scale
        index = tf.stack([tf.cast(here[:, 0], tf.int32), cell_y, cell_x, anchor], 1)
        grid = tf.stack([batch, height, width, per_scale])
        positive = tf.minimum(tf.scatter_nd(index, tf.ones(tf.shape(index)[:1]), grid), 1.0)
        target_box = tf.tensor_scatter_nd_update(
            tf.zeros(tf.concat([grid, [4]], 0)), index, box)
        target_class = tf.tensor_scatter_nd_update(
            tf.zeros(tf.concat([grid, [num_classes]], 0)), index,
            tf.one_hot(tf.gather_nd(true_classes, here), num_classes))

        # Negatives that overlap a true box well are ignored, not pushed to 0.
        flat = tf.reshape(pred_boxes, tf.stack([batch, -1, 1, 4]))
        overlaps = box_ops.iou(flat, true_boxes[:, None, :, :])  # [B, N, M]
        overlaps = tf.where(present[:, None, :], overlaps, tf.zeros_like(overlaps))
        best_overlap = tf.reshape(tf.reduce_max(overlaps, -1), tf.shape(objectness))
        negative = (1.0 - positive) * tf.cast(best_overlap < ignore_threshold, tf.float32)
        terms['objectness'] += tf.reduce_sum(
            positive * _cross_entropy(tf.ones_like(objectness), objectness) +
            negative * _cross_entropy(tf.zeros_like(objectness), objectness)) / images
        terms['classes'] += tf.reduce_sum(
            positive[..., None] * _cross_entropy(target_class, class_logits)) / images

        true_size = target_box[..., 2:4] - target_box[..., 0:2]
        weight = positive * (2.0 - true_size[..., 0] * true_size[..., 1] / input_area)
        if box_loss == 'yolov3':
            true_centre = (target_box[..., 0:2] + target_box[..., 2:4]) / 2 / float(stride)
            offset = true_centre - tf.floor(true_centre)
            log_size = tf.math.log(tf.maximum(true_size, 1e-3) /
                                   tf.constant(scale_anchors, tf.float32))
            per_box = tf.reduce_sum(_cross_entropy(offset, raw[..., 0:2]), -1) + \
                0.5 * tf.reduce_sum(tf.square(raw[..., 2:4] - log_size), -1)
        else:
            overlap = (box_ops.giou if box_loss == 'giou' else box_ops.ciou)(pred_boxes,
                                                                             target_box)
            per_box = 1.0 - overlap
        terms['box'] += tf.reduce_sum(weight * per_box) / images
    return terms['box'] + terms['objectness'] + terms['classes'], terms
