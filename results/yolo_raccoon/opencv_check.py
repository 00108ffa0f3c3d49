"""OpenCV's dnn running the detector frozen without suppression (freeze_graph.py --nms 0 --onnx)
on the test photos, against ONNX Runtime on the same file and the .pb with suppression inside:
the candidates' largest gaps, then OpenCV's own suppression (cv2.dnn.NMSBoxesBatched, the
.json's thresholds) against the .pb's detections of score 0.3 or more.
Usage: python opencv_check.py RAW.onnx SUPPRESSED.pb VOC_DIR"""
import json
import os
import sys

import cv2
import numpy as np
import onnxruntime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from deployment import detectors  # noqa: E402
from pipelines import detection as pipeline  # noqa: E402

SHOWN = 0.3  # predict.py's default score threshold


def main(raw_path, pb_path, voc):
    with open(os.path.splitext(raw_path)[0] + '.json') as f:
        info = json.load(f)
    size, names = info['input_size'], info['outputs']
    net = cv2.dnn.readNet(raw_path)
    session = onnxruntime.InferenceSession(raw_path, providers=['CPUExecutionProvider'])
    suppressed = detectors.load(pb_path)
    with open(os.path.join(voc, 'ImageSets', 'Main', 'test.txt')) as f:
        stems = [line.strip() for line in f if line.strip()]
    box_gap = score_gap = 0.0
    counts, worst_iou = [0, 0], 1.0
    for stem in stems:
        photo = cv2.imread(os.path.join(voc, 'JPEGImages', stem + '.jpg'))[:, :, ::-1]
        image = pipeline.letterbox(np.ascontiguousarray(photo), size)[0].astype(np.float32)[None]
        net.setInput(image)
        found = dict(zip(net.getUnconnectedOutLayersNames(),
                         net.forward(net.getUnconnectedOutLayersNames())))
        boxes = found[names[0] + ':0'].reshape(-1, 4)
        scores = found[names[1] + ':0'].reshape(len(boxes), -1)
        theirs = session.run([n + ':0' for n in names], {'input:0': image})
        box_gap = max(box_gap, float(np.abs(boxes - theirs[0][0]).max()))
        score_gap = max(score_gap, float(np.abs(scores - theirs[1][0]).max()))
        # OpenCV's suppression: each box its best class, suppressed per class, shown at SHOWN.
        best, classes = scores.max(1), scores.argmax(1)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), best.tolist(), classes.tolist(), SHOWN,
                                       info['iou_threshold'])
        keep = np.asarray(keep, int).reshape(-1)[:info['max_detections']]
        pb_boxes, pb_scores, _, count = suppressed.detect(image[0])
        pb_boxes = pb_boxes[:int(count)][pb_scores[:int(count)] >= SHOWN]
        counts[0] += len(keep)
        counts[1] += len(pb_boxes)
        for box in np.clip(boxes[keep], 0, size):
            worst_iou = min(worst_iou, max((_iou(box, b) for b in pb_boxes), default=0.0))
    print(json.dumps(dict(photos=len(stems), opencv=cv2.__version__,
                          candidates_max_box_gap_px=round(box_gap, 5),
                          candidates_max_score_gap=float('%.3g' % score_gap),
                          opencv_boxes_shown=counts[0], pb_boxes_shown=counts[1],
                          least_iou_with_a_pb_box=round(float(worst_iou), 4))))


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


if __name__ == '__main__':
    main(*sys.argv[1:])
