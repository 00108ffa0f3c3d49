"""Score a checkpoint, a frozen .pb, a .tflite or a .onnx on a whole test set: CIFAR-10's, or
your own.

    python3 evaluate.py ckpt/                       # latest checkpoint of a run
    python3 evaluate.py frozen/mobilenet_v1.pb
    python3 evaluate.py frozen/mobilenet_v1_int8.tflite --plot confusion.png
    python3 evaluate.py opencv:frozen/mobilenet_v1.pb   # the .pb run by OpenCV's dnn module
    python3 evaluate.py frozen/mobilenet_v1.onnx        # freeze_graph.py --onnx, in ONNX Runtime
    python3 evaluate.py ckpt/own --dataset folder --data_dir photos/
    python3 evaluate.py runs/yolo                      # a detector: mAP, COCO AP, detections

Detectors (train.py --task detect, and their frozen .pb, .tflite and .onnx): mAP@0.5 (VOC's
all-point interpolation; 'difficult' boxes neither hit nor missed), COCO's AP@[.5:.95],
AP50, AP75 and AR@100 by pycocotools, AP of each class; the detections are written as
COCO-format JSON (image_id, category_id, bbox [x, y, w, h] in pixels, score, file_name), and
the last line is JSON with mAP50, AP, AP50, AP75, AR100, per_class and detections (its path).

Prints per-class precision, recall, F1 and support with the confusion matrix
(rows: true class, columns: predicted), top-1 accuracy, top-5 where there are
more than 5 classes, macro-averaged F1 (each class counts the same, however
rare) and images/s; the last line is JSON. Own images are seen as in training's
evaluation: at 32x32 resized whole, at other sizes the central 87.5%, resized.
"""
import json
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

import config
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors

def predict_all(model, batches, flip_tta=False):
    """(probabilities, labels, images/s) over `batches()` (a fresh iterator of (images at the
    model's input size, labels) each call); with flip_tta, averaged with the mirror image.

    The clock starts after one warm-up batch, so set-up is not counted as speed.
    """
    first = next(iter(batches()), None)
    if first is None:
        raise errors.DataError('no image of the split decodes: nothing to score')
    model.predict(first[0])
    start = time.perf_counter()
    outputs, labels = [], []
    for images, batch_labels in batches():
        probs = model.predict(images)
        if flip_tta:
            probs = (probs + model.predict(images[:, :, ::-1])) / 2
        outputs.append(probs)
        labels.append(batch_labels)
    probs, labels = np.concatenate(outputs), np.concatenate(labels)
    return probs, labels, len(labels) / (time.perf_counter() - start)


def batch1_latency_ms(model, batches, runs):
    """(median milliseconds of one single-image prediction after a warm-up call, images timed):
    over the first `runs` images."""
    images = []
    for batch, _ in batches():
        images.extend(batch[:runs - len(images)])
        if len(images) == runs:
            break
    model.predict(images[0][None])
    times = []
    for image in images:
        start = time.perf_counter()
        model.predict(image[None])
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), len(images)


def split_batches(split, dataset, size, batch_size, num_classes):
    """batches() for predict_all over a split (datasets/sources.py) at the model's input
    size, each image seen as training's evaluation saw it."""
    from datasets import decoding
    from datasets import sources
    from deployment import models
    from pipelines import streamed
    if isinstance(split, sources.Arrays):
        images, labels = models.resize_images(split.images, size), split.labels
        return lambda: ((images[i:i + batch_size], labels[i:i + batch_size])
                        for i in range(0, len(labels), batch_size))
    fraction = streamed.central_fraction(dataset, size)

    def batches():
        views = streamed.eval_views(decoding.elements(split), isinstance(split, sources.Files),
                                    num_classes, size, fraction)
        return views.batch(batch_size).prefetch(2).as_numpy_iterator()
    return batches


def save_plot(matrix, label_names, accuracy, title, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap='Blues')
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha='right')
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha='center', va='center', fontsize=7,
                color='white' if v > matrix.max() / 2 else 'black')
    ax.set_title('%s: top-1 %.4f' % (title, accuracy))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('model', help='checkpoint prefix or folder, FILE.pb, FILE.tflite, FILE.onnx or opencv:FILE.pb')
    command_line.add_data_flags(parser, 'the data scored')
    parser.add_argument('--split', choices=('auto', 'test', 'val', 'train'), default='auto',
                        help="own data: the split scored; 'auto' is test when there is one, else "
                             'validation, else (a folder of class folders only) every image '
                             '(default: %(default)s)')
    parser.add_argument('--batch_size', type=int, default=config.DEFAULTS['eval_batch_size'],
                        help='images per call (default: %(default)s)')
    parser.add_argument('--flip_tta', action='store_true',
                        help='average the predictions of each image and its mirror image')
    parser.add_argument('--plot', metavar='PNG', help='also save the confusion matrix as a PNG')
    parser.add_argument('--reference', metavar='MODEL',
                        help='also run MODEL (any form; the architecture flags apply to it too) and '
                             'report how often both predict the same class and the largest '
                             'probability difference')
    parser.add_argument('--latency', type=int, default=0, metavar='N',
                        help='also report the median batch-1 latency over N test images (default: 0, off)')
    parser.add_argument('--detections', metavar='JSON',
                        help="detectors: where to write the detections (COCO's result format "
                             'and file_name) (default: detections_SPLIT.json in the run\'s folder, '
                             'or STEM_FORMAT_detections_SPLIT.json beside a file, e.g. '
                             'yolo_tflite_detections_test.json)')
    for key in ('score_threshold', 'iou_threshold', 'max_detections'):
        parser.add_argument('--' + key, type=type(config.DEFAULTS[key]), default=None,
                            help="detector checkpoints: %s (default: the run's); a frozen "
                                 'detector takes only the value it was frozen with' % command_line.HELP[key])
    command_line.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch_size must be at least 1, got %d' % args.batch_size)
    for flag in ('score_threshold', 'iou_threshold'):
        if getattr(args, flag) is not None and not 0 <= getattr(args, flag) <= 1:
            parser.error('--%s must be in [0, 1], got %r' % (flag, getattr(args, flag)))
    if args.max_detections is not None and args.max_detections < 1:
        parser.error('--max_detections must be at least 1, got %d' % args.max_detections)
    for flag in ('latency', 'val_size', 'test_size'):
        if (getattr(args, flag) or 0) < 0:
            parser.error('--%s must be 0 or more, got %d' % (flag, getattr(args, flag)))
    if args.plot:
        # Found now, not after scoring the whole test set.
        if not args.plot.lower().endswith('.png'):
            parser.error('--plot must name a .png file, got %r' % args.plot)
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            parser.error('--plot %s: no folder %s' % (args.plot, folder))
    return args


def data_to_score(args, model):
    """run_files.data_settings of the model's run with the flags given over them; UsageError
    for flags that do not fit the dataset; a line when the run's own settings are used."""
    from checkpoints import run_files
    data = run_files.data_settings(model.run, vars(args))
    if data['dataset'] not in ('folder',) + config.DETECTION_DATASETS and (
            args.val_size or args.test_size):
        raise errors.UsageError('--val_size and --test_size apply to folder and detection '
                                'datasets (this is %s)' % data['dataset'])
    if data['dataset'] == 'cifar10' and args.split not in ('auto', 'test'):
        raise errors.UsageError('--split %s: evaluate.py scores CIFAR-10 on its test_batch'
                                % args.split)
    taken = [key for key in config.DATA_KEYS if getattr(args, key) is None
             and key in model.run and data[key] == model.run[key]
             and (key in ('dataset', 'data_dir') or data[key] != config.DEFAULTS[key])]
    if taken:
        print("Data: %s, the run's (its config.json); pass --dataset and --data_dir to score "
              "other data" % ' '.join('--%s %s' % (key, data[key]) for key in taken), flush=True)
    return data


def check_classes(model, count, dataset, data_dir, classes):
    """DataError when the model's class count is not the data's."""
    if count == classes:
        return
    if dataset == 'cifar10':
        raise errors.DataError('%s has %d classes, CIFAR-10 %d: score it on the data it was '
                               'trained for (--dataset, --data_dir)' % (model, count, classes))
    raise errors.DataError('%s has %d classes but %s has %d: score a model trained on these '
                           'classes' % (model, count, data_dir, classes))


def evaluate(args):
    cpu_kernels.import_tensorflow()  # only once the flags are good
    from datasets import decoding
    from datasets import factory
    from deployment import models
    from tasks import classification_metrics as metrics
    decoding.forget_skipped_images()
    from deployment import detectors
    detector = detectors.load(args.model, dict(
        image_size=args.image_size, score_threshold=args.score_threshold,
        iou_threshold=args.iou_threshold, max_detections=args.max_detections))
    if detector is not None:
        detectors.check_frozen_settings(detector, args.model, {
            key: getattr(args, key) for key in ('image_size', 'score_threshold', 'iou_threshold',
                                                'max_detections')})
        for flag, given in (('flip_tta', args.flip_tta), ('plot', args.plot),
                            ('reference', args.reference), ('latency', args.latency)):
            if given:
                raise errors.UsageError('--%s applies to classifiers; %s is a detector (its '
                                        'median time a photo is always reported)'
                                        % (flag, args.model))
        return evaluate_detector(args, detector)
    for flag in ('detections', 'score_threshold', 'iou_threshold', 'max_detections'):
        if getattr(args, flag) is not None:
            raise errors.UsageError('--%s applies to detectors; %s is a classifier'
                                    % (flag, args.model))
    model = models.load_model(args.model, **command_line.architecture_overrides(args))
    # Loaded now: a reference that does not load costs no scoring.
    reference_model = models.load_model(args.reference, **command_line.architecture_overrides(
        args)) if args.reference else None
    data = data_to_score(args, model)
    dataset, data_dir = data['dataset'], data['data_dir']
    # CIFAR-10 is scored on its test_batch alone: the training batches are not read.
    splits = factory.load(dataset, data_dir, data['val_size'], data['test_size'], data['seed'],
                          data['cifar_archive'] or None, test_only=dataset == 'cifar10')
    own = model.run.get('dataset') == dataset and 'data_dir' in model.run and \
        os.path.realpath(model.run['data_dir']) == os.path.realpath(data_dir)
    carved_alike = all(data[key] == model.run.get(key) for key in ('val_size', 'test_size', 'seed'))
    if own and carved_alike and model.run.get('held_out') and \
            splits.get('held_out') != model.run['held_out']:
        print('Note: images were added to or removed from %s since the run was trained: its '
              '--val_size/--test_size carve other held-out images now, some it trained on'
              % data_dir, flush=True)
    split = args.split
    if split == 'auto':
        split = next((s for s in ('test', 'val') if splits[s].num_images), None)
        if split is None and dataset != 'folder':
            raise errors.DataError('%s: no test or validation split; pass --split train to score '
                                   'the training split' % data_dir)
        if split is None:
            split = 'train'  # a folder of class folders: every image
            if own:
                print('Note: %s holds no held-out images: all of them are scored, the ones the '
                      'run trained on' % data_dir, flush=True)
    if not splits[split].num_images:
        raise errors.DataError('%s: no %s split' % (data_dir, split))
    names = list(splits['label_names'])
    # Checked before anything is scored: a model of other classes scores nothing of meaning.
    if model.num_classes is not None:
        check_classes(args.model, int(model.num_classes), dataset, data_dir, len(names))
    if model.labels and list(model.labels) != names:
        raise errors.DataError('%s was trained on the classes %s, %s holds %s: score it on the '
                               'data it was trained for' % (args.model, ', '.join(model.labels),
                                                            data_dir, ', '.join(names)))
    batches = split_batches(splits[split], dataset, model.input_size, args.batch_size, len(names))
    probs, labels, images_per_sec = predict_all(model, batches, args.flip_tta)
    check_classes(args.model, probs.shape[1], dataset, data_dir, len(names))
    latency, timed = batch1_latency_ms(model, batches, args.latency) if args.latency else (None, 0)
    reference = None
    if reference_model is not None:  # each model sees the split at its own input size
        reference, _, _ = predict_all(reference_model, split_batches(
            splits[split], dataset, reference_model.input_size, args.batch_size, len(names)),
            args.flip_tta)
        if reference.shape != probs.shape:
            raise errors.DataError('--reference %s gives %d classes, %s %d: compare models of '
                                   'the same classes' % (args.reference, reference.shape[1],
                                                         args.model, probs.shape[1]))
    predictions = probs.argmax(1)
    matrix = metrics.confusion_matrix(labels, predictions, probs.shape[1])
    rows = metrics.per_class(matrix, names)
    accuracy = float((predictions == labels).mean())
    top5 = metrics.top_k_accuracy(probs, labels, 5) if probs.shape[1] > 5 else None
    macro_f1 = metrics.macro_f1(matrix)
    skipped = decoding.skipped_images()
    print(metrics.format_table(matrix, rows))
    print('top-1 accuracy %.4f%s, macro F1 %.4f on %s%d %s images%s; %.0f images/s' % (
        accuracy, '' if top5 is None else ', top-5 %.4f' % top5, macro_f1,
        '%d of the ' % len(labels) if skipped else '', splits[split].num_images, split,
        ' (flip TTA)' if args.flip_tta else '', images_per_sec))
    if skipped:
        names_shown = sorted(skipped)[:10]
        print('Skipped %d image(s) that do not decode: %s%s' % (len(skipped), '; '.join(
            '%s (%s)' % (name, skipped[name]) for name in names_shown), '; and %d more (the JSON '
            "line's skipped_files lists all)" % (len(skipped) - 10) if len(skipped) > 10 else ''))
    if latency is not None:
        print('batch-1 latency %.2f ms (median of %d)' % (latency, timed))
    agreement = None
    if reference is not None:
        agreement = dict(model=args.reference,
                         same_class=float((reference.argmax(1) == predictions).mean()),
                         accuracy=float((reference.argmax(1) == labels).mean()),
                         max_abs_probability_difference=float(np.abs(reference - probs).max()))
        print('against %s (top-1 %.4f): same class on %.4f of the images, probabilities within %.2g'
              % (args.reference, agreement['accuracy'], agreement['same_class'],
                 agreement['max_abs_probability_difference']))
    if args.plot:
        try:
            save_plot(matrix, names, accuracy, os.path.basename(args.model.rstrip('/')), args.plot)
        except OSError as e:
            raise errors.UsageError('%s: cannot write (%s)' % (args.plot, e.strerror or e)) from e
        print('wrote %s' % args.plot)
    print(json.dumps(dict(model=args.model, dataset=dataset, split=split, accuracy=accuracy,
                          top5_accuracy=top5, macro_f1=round(macro_f1, 4),
                          num_images=int(len(labels)), skipped_images=len(skipped),
                          skipped_files=sorted(skipped), flip_tta=args.flip_tta,
                          images_per_sec=round(images_per_sec, 1),
                          batch1_latency_ms=None if latency is None else round(latency, 3),
                          reference=agreement, per_class=rows, confusion=matrix.tolist())))


def evaluate_detector(args, model):
    """mAP@0.5 (VOC all-point), COCO's AP, AP50, AP75 and AR100 (pycocotools) and per-class AP
    of a detector on a split; its detections written as COCO-format JSON."""
    from datasets import decoding
    from datasets import detections
    from deployment import detectors
    from tasks import detector as task
    data = data_to_score(args, model)
    loaded = detections.load(data['dataset'], data['data_dir'], data['val_size'],
                             data['test_size'], data['seed'])
    for line in loaded['problems'].lines():
        print(line, flush=True)
    names = loaded['label_names']
    if list(model.labels) != names:
        raise errors.DataError('%s was trained on the classes %s, %s holds %s: score it on the '
                               'data it was trained for' % (args.model, ', '.join(model.labels),
                                                            data['data_dir'], ', '.join(names)))
    split = args.split if args.split != 'auto' else next(
        (s for s in ('test', 'val') if loaded[s].num_images), None)
    if split is None or not loaded[split].num_images:
        raise errors.DataError('%s: no %s split; pass --split train to score the training photos'
                               % (data['data_dir'], split or 'test or validation'))
    boxes = loaded[split]
    found, scored, rate, times = detectors.detect_split(model, boxes, loaded['category_ids'])
    if not scored:
        raise errors.DataError('no photo of the %s split decodes: nothing to score' % split)
    figures = task.scores(found, boxes, names, loaded['category_ids'], scored)
    path = args.detections or detections_path(args.model, split)
    # Scored by the split's own numbering (1.. in split order); written with a COCO folder's
    # image ids, so the file scores against its instances_*.json as COCO's result format.
    written = [dict(d, image_id=loaded['image_ids'].get(boxes.paths[d['image_id'] - 1],
                                                        d['image_id'])) for d in found]
    try:
        from preflight import files
        files.write_files({path: json.dumps(written) + '\n'})
    except OSError as e:
        raise errors.UsageError('%s: cannot write (%s)' % (path, e.strerror or e)) from e
    width = max([len(n) for n in names] + [5])
    print('%-*s  %8s' % (width, 'class', 'AP@0.5'))
    for name in names:
        ap = figures['per_class'][name]
        print('%-*s  %8s' % (width, name, 'no boxes' if ap is None else '%.4f' % ap))
    skipped = decoding.skipped_images()
    print('mAP@0.5 %.4f (VOC all-point); COCO AP %.4f, AP50 %.4f, AP75 %.4f, AR100 %.4f on %s%d '
          '%s photos; %.1f photos/s, median %.1f ms a photo' % (
              figures['mAP50'], figures['AP'], figures['AP50'], figures['AP75'],
              figures['AR100'], '%d of the ' % len(scored) if skipped else '', boxes.num_images,
              split, rate or 0.0, float(np.median(times))))
    if skipped:
        print('Skipped %d photo(s): %s' % (len(skipped), '; '.join(
            '%s (%s)' % (name, skipped[name]) for name in sorted(skipped)[:10])))
    print('wrote %s (%d detections)' % (path, len(found)))
    print(json.dumps(dict(model=args.model, dataset=data['dataset'], split=split,
                          **{k: round(figures[k], 4) for k in ('mAP50', 'AP', 'AP50', 'AP75',
                                                                 'AR100')},
                          per_class=figures['per_class'], num_images=len(scored),
                          skipped_files=sorted(skipped), images_per_sec=round(rate or 0.0, 2),
                          median_ms=round(float(np.median(times)), 2), detections=path)))


def detections_path(model, split):
    """Where the detections go unless --detections says: beside a file (STEM_FORMAT_detections_
    SPLIT.json: a .pb and its .tflite, side by side, keep theirs apart), in a run's folder
    (detections_SPLIT.json)."""
    if model.endswith(('.pb', '.tflite', '.onnx')):
        stem, extension = os.path.splitext(model)
        return '%s_%s_detections_%s.json' % (stem, extension[1:], split)
    folder = model if os.path.isdir(model) else os.path.dirname(model)
    return os.path.join(folder, 'detections_%s.json' % split)


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('evaluate.py', lambda: evaluate(args))


if __name__ == '__main__':
    sys.exit(main())
