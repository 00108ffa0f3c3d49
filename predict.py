"""Classify image files, or find objects in them, with a checkpoint, a frozen .pb, a .tflite or
a .onnx.

    python3 predict.py frozen/mobilenet_v1.pb cat.jpg truck.png --top_k 3
    python3 predict.py runs/yolo photo.jpg --output_dir drawn/     # a detector: boxes drawn

Images of any size (PNG, JPEG, anything Pillow reads) are decoded to the 8-bit
RGB a viewer shows, as the folder datasets decode them (datasets/image_files.py), and
seen as the model's evaluation saw its images: resized whole for a model of
32x32 images or of CIFAR-10, the central 87.5% resized for own images at other
sizes (TF-Slim's evaluation view). One line per image; the last line is JSON.

A detector (train.py --task detect) sees each photo letterboxed (scaled whole to fit, centred
on grey), as it was scored; its boxes are given in the photo's pixels (x1, y1, x2, y2), best
first, those of --score_threshold or more; with --output_dir each photo is written there with
its boxes and labels drawn.
"""
import io
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from datasets import image_files
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors


# Boxes predict.py shows unless --score_threshold says (scoring counts far lower ones).
DEFAULT_SCORE = 0.3


def read_image(path):
    """uint8 RGB pixels [H, W, 3], as the datasets decode them; ModelError naming the file."""
    try:
        return image_files.read_rgb(path)
    except errors.ImageError as e:
        raise errors.ModelError('%s: cannot read image (%s)' % (path, e)) from e


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('model', help='checkpoint prefix or folder, FILE.pb, FILE.tflite, FILE.onnx or opencv:FILE.pb')
    parser.add_argument('images', nargs='+', metavar='IMAGE', help='image files')
    parser.add_argument('--top_k', type=int, default=3, help='labels shown per image (default: %(default)s)')
    parser.add_argument('--labels', default=None,
                        help="class names, one a line, in place of those saved with the model "
                             "(a file of one name more or fewer than the model's classes: the "
                             'background class of 1001-class models is dropped or added)')
    parser.add_argument('--output_dir', default=None,
                        help='detectors: write each photo there with its boxes drawn (same name)')
    parser.add_argument('--score_threshold', type=float, default=None,
                        help='detectors: boxes of at least this score are shown (default: %s)'
                             % DEFAULT_SCORE)
    parser.add_argument('--iou_threshold', type=float, default=None,
                        help="detector checkpoints: non-max suppression's IoU (default: the "
                             "run's); a frozen detector takes only the value it was frozen with")
    parser.add_argument('--max_detections', type=int, default=None,
                        help="detectors: at most this many boxes a photo (default: the run's, "
                             'or the frozen graph\'s)')
    command_line.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error('--top_k must be at least 1, got %d' % args.top_k)
    if any(value is not None and not 0 <= value <= 1
           for value in (args.score_threshold, args.iou_threshold)):
        parser.error('--score_threshold and --iou_threshold must be in [0, 1]')
    if args.max_detections is not None and args.max_detections < 1:
        parser.error('--max_detections must be at least 1, got %d' % args.max_detections)
    if args.output_dir and os.path.isfile(args.output_dir):
        parser.error('--output_dir %s is a file, not a folder' % args.output_dir)
    return args


def predict(args):
    if args.labels and not os.path.exists(args.labels):
        raise errors.UsageError('--labels %s: no such file' % args.labels)
    cpu_kernels.import_tensorflow()  # only once the flags are good
    from deployment import detectors
    from deployment import models
    detector = detectors.load(args.model, dict(
        image_size=args.image_size, iou_threshold=args.iou_threshold,
        max_detections=args.max_detections))
    if detector is not None:
        # --score_threshold and --max_detections filter what is shown: any frozen value serves.
        detectors.check_frozen_settings(detector, args.model, dict(
            image_size=args.image_size, iou_threshold=args.iou_threshold))
        if args.labels:
            raise errors.UsageError("--labels applies to classifiers; %s is a detector (its "
                                    "run's class names)" % args.model)
        return detect(args, detector)
    for flag in ('output_dir', 'score_threshold', 'iou_threshold', 'max_detections'):
        if getattr(args, flag) is not None:
            raise errors.UsageError('--%s applies to detectors; %s is a classifier'
                                    % (flag, args.model))
    model = models.load_model(args.model, **command_line.architecture_overrides(args))
    # Read every image before predicting any, so a bad file costs no partial output.
    batch = models.photo_views([read_image(path) for path in args.images],
                               model.input_size, model.central_fraction)
    probs = model.predict(batch)
    if args.labels:
        names, note = models.read_labels(args.labels, probs.shape[1])
        if note:
            print('Note: %s' % note, flush=True)
    else:
        names = models.label_names(args.model, model.labels, probs.shape[1])
    results = []
    for path, row in zip(args.images, probs):
        top = np.argsort(-row, kind='stable')[:args.top_k]  # ties in class order, as argmax
        ranked = [(names[i], float(row[i])) for i in top]
        print('%s: %s' % (path, ', '.join('%s %.3f' % pair for pair in ranked)))
        results.append(dict(image=path, top_k=[dict(label=l, probability=round(p, 6)) for l, p in ranked]))
    print(json.dumps(results))


def detect(args, model):
    """Boxes of each photo (printed, JSON last), and with --output_dir the photos drawn."""
    from detection import drawing
    from pipelines import detection
    threshold = DEFAULT_SCORE if args.score_threshold is None else args.score_threshold
    photos = [read_image(path) for path in args.images]
    outputs = {}
    if args.output_dir:
        for path in args.images:
            target = os.path.join(args.output_dir, os.path.basename(path))
            if os.path.exists(target) and os.path.samefile(target, path):
                raise errors.UsageError('--output_dir %s: would write the drawn photo over %s '
                                        'itself; pass another folder' % (args.output_dir, path))
            if target in outputs.values():
                raise errors.UsageError('%s: two photos of this name; --output_dir would write '
                                        'one over the other' % os.path.basename(path))
            outputs[path] = target
    results, drawn = [], {}
    for path, pixels in zip(args.images, photos):
        letterboxed, _ = detection.letterbox(pixels, model.input_size)
        boxes, scores, classes, count = model.detect(letterboxed.astype(np.float32))
        count = int(np.asarray(count).reshape(()))
        height, width = pixels.shape[:2]
        photo_boxes = detection.to_photo(np.asarray(boxes).reshape(-1, 4)[:count], height, width,
                                         model.input_size)
        shown = [(box, float(score), int(label)) for box, score, label in zip(
            photo_boxes, np.asarray(scores).reshape(-1)[:count],
            np.asarray(classes).reshape(-1)[:count])
            if score >= threshold][:args.max_detections or None]
        print('%s: %s' % (path, ', '.join('%s %.2f at %d,%d,%d,%d' % (
            model.labels[label], score, *np.round(box)) for box, score, label in shown)
            or 'nothing at score %.2f or more' % threshold))
        results.append(dict(image=path, width=width, height=height, detections=[
            dict(label=model.labels[label], class_index=label, score=round(score, 4),
                 box=[round(float(v), 1) for v in box]) for box, score, label in shown]))
        if args.output_dir:
            drawn[outputs[path]] = drawing.draw(pixels, shown, model.labels)
    if drawn:
        from preflight import files
        encoded = {}
        for target, image in drawn.items():
            data = io.BytesIO()
            image.save(data, format=image_files.format_of(target))
            encoded[target] = data.getvalue()
        try:
            files.write_files(encoded)  # all the drawn photos, or none
        except OSError as e:
            raise errors.UsageError('%s: cannot write (%s)' % (
                (e.filename or args.output_dir).removesuffix('.tmp'), e.strerror or e)) from e
        for target in encoded:
            print('wrote %s' % target)
        for result in results:
            result['drawn'] = outputs[result['image']]
    print(json.dumps(results))


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('predict.py', lambda: predict(args))


if __name__ == '__main__':
    sys.exit(main())
