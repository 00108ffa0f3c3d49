"""Average precision of detections against a split's boxes: Pascal VOC's mAP@0.5 (all-point
interpolation, VOC2010 on, as the devkit's VOCevalcls; 'difficult' boxes neither hit nor
missed), and COCO's AP@[.5:.95], AP50, AP75 and AR@100 computed by pycocotools, the field's
reference implementation.

Detections are dicts in COCO's result format: image_id, category_id, bbox [x, y, w, h] in
pixels, score (and file_name, which pycocotools ignores). Ground truth is a Boxes split; its
images are numbered 1.. in split order, classes by `category_ids`.
"""
import contextlib
import io

import numpy as np

COCO_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm',
             'ARl')


def _iou(box, boxes):
    """IoU of one [x1, y1, x2, y2] box with [n, 4] boxes (continuous coordinates)."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.maximum(bottom_right - top_left, 0), 1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], 1) - inter
    return inter / np.maximum(union, 1e-12)


def voc_ap(recall, precision):
    """The area under the precision-recall curve made monotone (VOC's all-point AP)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def voc_map(detections, split, category_ids, images=None, iou_threshold=0.5):
    """(mAP over the classes that have boxes, [AP of each class or None]). `images`: the
    indices of the split's images scored (the others, left out as unreadable, count for
    nothing)."""
    images = range(split.num_images) if images is None else images
    by_category = {}
    for d in detections:
        by_category.setdefault(d['category_id'], []).append(d)
    per_class = []
    for label, category in enumerate(category_ids):
        truth, positives = {}, 0
        for i in images:
            mine = split.classes[i] == label
            truth[i + 1] = (split.boxes[i][mine], split.ignored[i][mine],
                            np.zeros(int(mine.sum()), bool))
            positives += int((~split.ignored[i][mine]).sum())
        found = sorted((d for d in by_category.get(category, ()) if d['image_id'] in truth),
                       key=lambda d: -d['score'])
        if not positives:
            per_class.append(None)
            continue
        hits = np.zeros(len(found))
        misses = np.zeros(len(found))
        for k, d in enumerate(found):
            boxes, ignored, taken = truth[d['image_id']]
            x, y, w, h = d['bbox']
            overlaps = _iou(np.array([x, y, x + w, y + h]), boxes) if len(boxes) else np.zeros(0)
            best = int(np.argmax(overlaps)) if len(overlaps) else -1
            if best >= 0 and overlaps[best] >= iou_threshold:
                if ignored[best]:
                    continue  # a 'difficult' box: this detection counts for nothing
                if not taken[best]:
                    taken[best] = True
                    hits[k] = 1
                    continue
            misses[k] = 1
        hits, misses = np.cumsum(hits), np.cumsum(misses)
        recall = hits / positives
        precision = hits / np.maximum(hits + misses, np.finfo(np.float64).eps)
        per_class.append(voc_ap(recall, precision))
    scored = [ap for ap in per_class if ap is not None]
    return (float(np.mean(scored)) if scored else 0.0), per_class


def coco_ground_truth(split, names, category_ids, images=None):
    """The split as a COCO instances dict (ignored boxes as iscrowd regions)."""
    images = range(split.num_images) if images is None else images
    content = dict(images=[], annotations=[], categories=[
        dict(id=int(c), name=n) for c, n in zip(category_ids, names)])
    for i in images:
        height, width = split.sizes[i]
        content['images'].append(dict(id=i + 1, width=int(width), height=int(height),
                                      file_name=str(split.paths[i])))
        for box, label, ignored in zip(split.boxes[i], split.classes[i], split.ignored[i]):
            x1, y1, x2, y2 = (float(v) for v in box)
            content['annotations'].append(dict(
                id=len(content['annotations']) + 1, image_id=i + 1,
                category_id=int(category_ids[label]), bbox=[x1, y1, x2 - x1, y2 - y1],
                area=(x2 - x1) * (y2 - y1), iscrowd=int(ignored)))
    return content


def coco_metrics(detections, split, names, category_ids, images=None):
    """{COCO_KEYS: value} from pycocotools' COCOeval (bbox), its console table swallowed; -1
    where COCO has nothing to score (as pycocotools)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = coco_ground_truth(split, names, category_ids, images)
        truth.createIndex()
        if not detections:
            return dict.fromkeys(COCO_KEYS, 0.0)
        results = truth.loadRes([{k: d[k] for k in ('image_id', 'category_id', 'bbox', 'score')}
                                 for d in detections])
        evaluation = COCOeval(truth, results, 'bbox')
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {key: float(value) for key, value in zip(COCO_KEYS, evaluation.stats)}
