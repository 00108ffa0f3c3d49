"""Anchor boxes, (width, height) in input pixels, sorted by area: three for each scale, the
smallest three at the finest (stride 8) as YOLOv3 assigns them.

'yolov3' is YOLOv3's nine, chosen on COCO at 416; 'kmeans' clusters the training boxes
(letterboxed to --image_size) with YOLOv2's distance, 1 - IoU of boxes sharing a centre.
"""
import numpy as np

from preflight.errors import UsageError

YOLOV3 = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198),
          (373, 326))


def shape_iou(sizes, anchors):
    """IoU [n, k] of boxes of `sizes` [n, 2] and `anchors` [k, 2] placed on one centre."""
    sizes, anchors = np.asarray(sizes, np.float64), np.asarray(anchors, np.float64)
    inter = (np.minimum(sizes[:, None, 0], anchors[None, :, 0]) *
             np.minimum(sizes[:, None, 1], anchors[None, :, 1]))
    union = sizes[:, 0:1] * sizes[:, 1:2] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / union


def kmeans(sizes, count, seed=0, iterations=300):
    """`count` anchors [count, 2] clustering `sizes` [n, 2] by 1 - IoU (YOLOv2), medians as
    centres, k-means++ seeding; sorted by area, rounded to pixels."""
    sizes = np.asarray(sizes, np.float64)
    shapes = len(np.unique(np.round(sizes), axis=0)) if len(sizes) else 0
    if shapes < count:
        # Fewer shapes than anchors would give copies of one anchor, the copies never positive.
        raise UsageError('--anchors kmeans needs at least %d training boxes of distinct shapes, '
                         'there are %d; pass --anchors yolov3' % (count, shapes))
    random = np.random.RandomState(seed)
    centres = [sizes[random.randint(len(sizes))]]
    while len(centres) < count:
        distance = 1 - shape_iou(sizes, centres).max(1)
        total = distance.sum()
        pick = random.choice(len(sizes), p=distance / total) if total > 0 else \
            random.randint(len(sizes))
        centres.append(sizes[pick])
    centres = np.array(centres)
    for _ in range(iterations):
        nearest = shape_iou(sizes, centres).argmax(1)
        updated = np.array([np.median(sizes[nearest == k], 0) if np.any(nearest == k)
                            else centres[k] for k in range(count)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return sort_by_area(np.maximum(np.round(centres), 1))


def sort_by_area(anchors):
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind='stable')]


def mean_best_iou(sizes, anchors):
    """The mean over boxes of their best anchor's IoU: how well the anchors fit the data."""
    return float(shape_iou(sizes, anchors).max(1).mean()) if len(sizes) else 0.0


def letterboxed_sizes(split, image_size):
    """(width, height) [n, 2] of a Boxes split's training boxes as letterboxed to image_size."""
    sizes = []
    for (height, width), boxes, ignored in zip(split.sizes, split.boxes, split.ignored):
        scale = image_size / max(height, width)
        kept = boxes[~ignored]
        sizes.append(np.stack([kept[:, 2] - kept[:, 0], kept[:, 3] - kept[:, 1]], 1) * scale)
    return np.concatenate(sizes) if sizes else np.zeros((0, 2))


def resolve(choice, split, image_size, count, seed=0):
    """[[w, h]] * count, sorted by area: `choice` 'yolov3' (its nine, or for other counts
    a failure), 'kmeans', or explicit 'w,h w,h ...'."""
    if choice == 'yolov3':
        if count != len(YOLOV3):
            raise UsageError("--anchors yolov3 gives 9 anchors, 3 for each of 3 scales; with %d "
                             "end points pass --anchors kmeans" % (count // 3))
        return sort_by_area(YOLOV3).tolist()
    if choice == 'kmeans':
        return kmeans(letterboxed_sizes(split, image_size), count, seed).tolist()
    try:
        anchors = [[float(v) for v in pair.split(',')] for pair in choice.split()]
        if any(len(pair) != 2 or min(pair) <= 0 for pair in anchors):
            raise ValueError
    except ValueError:
        raise UsageError("--anchors must be 'yolov3', 'kmeans' or pairs 'w,h w,h ...' in "
                         "pixels, got %r" % choice) from None
    if len(anchors) != count:
        raise UsageError('--anchors gives %d pairs; the %d scales take %d (3 each)'
                         % (len(anchors), count // 3, count))
    return sort_by_area(anchors).tolist()
