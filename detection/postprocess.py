"""From YOLOv3's raw predictions to detections: boxes decoded on each scale's grid, then per-class
non-max suppression, in ops that TFLite (builtin TOPK_V2 and NON_MAX_SUPPRESSION_V5) and
ONNX (TopK, NonMaxSuppression) both run.

Each box keeps its best class (score: objectness x that class's probability). Per-class
suppression is one suppression over boxes shifted apart by class (torchvision's batched_nms):
boxes of different classes never overlap, so none suppresses another's.
"""
import tensorflow as tf

# Boxes kept by score before suppression: enough for any photo, bounded for a device.
CANDIDATES = 1000

# Boxes are clipped to exp(this) anchors: a wild step early in training overflows nothing.
MAX_LOG_SCALE = 8.0


def decode_scale(raw, anchors, stride):
    """(boxes [B, h, w, A, 4] in input pixels, objectness logits [B, h, w, A], class logits
    [B, h, w, A, C]) of one scale's raw predictions."""
    shape = tf.shape(raw)
    xs = tf.cast(tf.range(shape[2]), tf.float32)
    ys = tf.cast(tf.range(shape[1]), tf.float32)
    grid = tf.stack(tf.meshgrid(xs, ys), -1)[None, :, :, None, :]  # [1, h, w, 1, 2] as (x, y)
    centre = (tf.sigmoid(raw[..., 0:2]) + grid) * float(stride)
    size = tf.exp(tf.minimum(raw[..., 2:4], MAX_LOG_SCALE)) * tf.constant(anchors, tf.float32)
    boxes = tf.concat([centre - size / 2, centre + size / 2], -1)
    return boxes, raw[..., 4], raw[..., 5:]


def decode(outputs, anchors, strides):
    """(boxes [B, N, 4], scores [B, N, C]) of every scale's predictions (yolo_v3's outputs)
    with `anchors` [[w, h]] (three a scale, finest first): scores are objectness x class."""
    per_scale = len(anchors) // len(outputs)
    all_boxes, all_scores = [], []
    for i, (raw, stride) in enumerate(zip(outputs, strides)):
        boxes, objectness, classes = decode_scale(
            raw, anchors[i * per_scale:(i + 1) * per_scale], stride)
        scores = tf.sigmoid(objectness)[..., None] * tf.sigmoid(classes)
        batch = tf.shape(raw)[0]
        all_boxes.append(tf.reshape(boxes, tf.stack([batch, -1, 4])))
        all_scores.append(tf.reshape(scores, tf.stack([batch, -1, tf.shape(classes)[-1]])))
    return tf.concat(all_boxes, 1), tf.concat(all_scores, 1)


def select(boxes, scores, score_threshold, iou_threshold, max_detections, size=None):
    """Detections of one image: (boxes [max_detections, 4], scores [max_detections], classes
    int32 [max_detections], count int32), best first, zero past `count`. `boxes` [N, 4],
    `scores` [N, C]; with `size` (height, width), boxes are clipped to the image."""
    best = tf.reduce_max(scores, -1)
    classes = tf.argmax(scores, -1, output_type=tf.int32)
    candidates = tf.minimum(tf.shape(best)[0], CANDIDATES)
    best, order = tf.math.top_k(best, candidates)
    boxes, classes = tf.gather(boxes, order), tf.gather(classes, order)
    if size is not None:
        height, width = float(size[0]), float(size[1])
        boxes = tf.stack([
            tf.clip_by_value(boxes[:, 0], 0.0, width), tf.clip_by_value(boxes[:, 1], 0.0, height),
            tf.clip_by_value(boxes[:, 2], 0.0, width), tf.clip_by_value(boxes[:, 3], 0.0, height)],
            1)
    # Classes apart by more than any box's extent: one suppression is a suppression per class.
    span = tf.reduce_max(boxes) + 1.0
    shifted = boxes + tf.cast(classes, tf.float32)[:, None] * span
    # (y1, x1, y2, x2) as TensorFlow's suppression reads boxes; the order does not change IoU.
    keep, kept_scores = tf.image.non_max_suppression_with_scores(
        shifted, best, max_detections, iou_threshold, score_threshold)
    count = tf.shape(keep)[0]
    pad = max_detections - count
    return (tf.pad(tf.gather(boxes, keep), [[0, pad], [0, 0]]), tf.pad(kept_scores, [[0, pad]]),
            tf.pad(tf.gather(classes, keep), [[0, pad]]), count)


def select_batch(boxes, scores, score_threshold, iou_threshold, max_detections, size=None):
    """select() of each image of a batch (in TensorFlow; deployed graphs take one image)."""
    def one(args):
        return select(args[0], args[1], score_threshold, iou_threshold, max_detections, size)
    return tf.map_fn(one, (boxes, scores), fn_output_signature=(
        tf.float32, tf.float32, tf.int32, tf.int32))
