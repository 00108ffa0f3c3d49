"""How close two detectors' boxes are, photo by photo: evaluate.py's COCO-format detections of
the reference (the frozen .pb) against each other form's. Boxes of score 0.3 or more (predict.py's
default) are paired greedily by IoU within a class; prints, per form, how many boxes each side
has, how many pair at IoU 0.5 or more, the paired boxes' IoU and largest corner gap in photo
pixels (median and largest), and the largest score gap.
Usage: python compare_detections.py REFERENCE.json OTHER.json..."""
import json
import sys
from collections import defaultdict

import numpy as np

SCORE = 0.3


def shown(path):
    """{image_id: [(category_id, score, [x1, y1, x2, y2]), ...]} of the boxes of score >= SCORE."""
    with open(path) as f:
        found = json.load(f)
    boxes = defaultdict(list)
    for d in found:
        if d['score'] >= SCORE:
            x, y, w, h = d['bbox']
            boxes[d['image_id']].append((d['category_id'], d['score'], [x, y, x + w, y + h]))
    return boxes


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def compare(reference, other):
    ious, corners, score_gaps, pairs = [], [], [], 0
    for image in set(reference) | set(other):
        theirs = list(other.get(image, []))
        for category, score, box in sorted(reference.get(image, []), key=lambda d: -d[1]):
            candidates = [(iou(box, b), i) for i, (c, _, b) in enumerate(theirs) if c == category]
            if not candidates or max(candidates)[0] < 0.5:
                continue
            overlap, i = max(candidates)
            _, their_score, their_box = theirs.pop(i)
            pairs += 1
            ious.append(overlap)
            corners.append(float(np.max(np.abs(np.subtract(box, their_box)))))
            score_gaps.append(abs(score - their_score))
    return dict(reference_boxes=sum(map(len, reference.values())),
                boxes=sum(map(len, other.values())), paired=pairs,
                median_iou=round(float(np.median(ious)), 4) if ious else None,
                min_iou=round(float(np.min(ious)), 4) if ious else None,
                median_corner_px=round(float(np.median(corners)), 3) if corners else None,
                max_corner_px=round(max(corners), 3) if corners else None,
                max_score_gap=round(max(score_gaps), 4) if score_gaps else None)


def main(argv):
    reference = shown(argv[0])
    for path in argv[1:]:
        print(json.dumps(dict(reference=argv[0], other=path, **compare(reference, shown(path)))))


if __name__ == '__main__':
    main(sys.argv[1:])
