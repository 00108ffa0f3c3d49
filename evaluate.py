"""Score a checkpoint, a frozen .pb or a .tflite on the whole CIFAR-10 test set.

    python3 evaluate.py ckpt/                       # latest checkpoint of a run
    python3 evaluate.py frozen/mobilenet_v1.pb
    python3 evaluate.py frozen/mobilenet_v1_int8.tflite --plot confusion.png
    python3 evaluate.py opencv:frozen/mobilenet_v1.pb   # the .pb run by OpenCV's dnn module

Prints top-1 accuracy, per-class accuracy, the confusion matrix (rows: true
class, columns: predicted) and images/s; the last line is JSON.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

import config
import data_utils
import inference


def predict_all(model, images, batch_size, flip_tta=False):
    """(probabilities for every image, images/s); with flip_tta, averaged with the mirror image.

    The clock starts after resizing and one warm-up batch, so set-up is not counted as speed.
    """
    images = inference.resize_images(images, model.input_size)
    model.predict(images[:batch_size])
    start = time.perf_counter()
    outputs = []
    for first in range(0, len(images), batch_size):
        batch = images[first:first + batch_size]
        probs = model.predict(batch)
        if flip_tta:
            probs = (probs + model.predict(batch[:, :, ::-1])) / 2
        outputs.append(probs)
    return np.concatenate(outputs), len(images) / (time.perf_counter() - start)


def batch1_latency_ms(model, images, runs):
    """Median milliseconds of one single-image prediction, after one warm-up call."""
    images = inference.resize_images(images[:runs], model.input_size)
    model.predict(images[:1])
    times = []
    for image in images:
        start = time.perf_counter()
        model.predict(image[None])
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def format_report(matrix, per_class, label_names):
    width = max(len(n) for n in label_names)
    lines = ['%-*s  %8s   %s' % (width, 'class', 'accuracy',
                                  ' '.join('%5s' % n[:5] for n in label_names))]
    for name, row, accuracy in zip(label_names, matrix, per_class):
        lines.append('%-*s  %8.4f   %s' % (width, name, accuracy, ' '.join('%5d' % v for v in row)))
    return '\n'.join(lines)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='checkpoint prefix or folder, FILE.pb, FILE.tflite or opencv:FILE.pb')
    parser.add_argument('--data_dir', default=config.DEFAULTS['data_dir'],
                        help='CIFAR-10 folder (default: %(default)s)')
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
    inference.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch_size must be at least 1, got %d' % args.batch_size)
    if args.latency < 0:
        parser.error('--latency must be 0 or more, got %d' % args.latency)
    if args.plot:
        # Found now, not after scoring the whole test set.
        if not args.plot.lower().endswith('.png'):
            parser.error('--plot must name a .png file, got %r' % args.plot)
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            parser.error('--plot %s: no folder %s' % (args.plot, folder))
    try:
        data_utils.ensure_cifar10(args.data_dir)
        images, labels = data_utils.load_batch(os.path.join(args.data_dir, data_utils.TEST_FILE))
        model = inference.load_model(args.model, **inference.architecture_overrides(args))
        probs, images_per_sec = predict_all(model, images, args.batch_size, args.flip_tta)
        latency = batch1_latency_ms(model, images, args.latency) if args.latency else None
        reference = None
        if args.reference:
            reference_model = inference.load_model(args.reference,
                                                   **inference.architecture_overrides(args))
            reference, _ = predict_all(reference_model, images, args.batch_size, args.flip_tta)
    except (inference.ModelError, data_utils.DataError) as e:
        print('evaluate.py: error: %s' % e, file=sys.stderr)
        return 2
    names = inference.label_names(model.labels, probs.shape[1])
    predictions = probs.argmax(1)
    matrix = confusion_matrix(labels, predictions, probs.shape[1])
    per_class = matrix.diagonal() / np.maximum(matrix.sum(1), 1)
    accuracy = float((predictions == labels).mean())
    print(format_report(matrix, per_class, names))
    print('top-1 accuracy %.4f on %d test images%s; %.0f images/s'
          % (accuracy, len(labels), ' (flip TTA)' if args.flip_tta else '', images_per_sec))
    if latency is not None:
        print('batch-1 latency %.2f ms (median of %d)' % (latency, min(args.latency, len(images))))
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
            print('evaluate.py: error: %s: cannot write (%s)' % (args.plot, e.strerror or e),
                  file=sys.stderr)
            return 2
        print('wrote %s' % args.plot)
    print(json.dumps(dict(model=args.model, accuracy=accuracy, num_images=int(len(labels)),
                          flip_tta=args.flip_tta, images_per_sec=round(images_per_sec, 1),
                          batch1_latency_ms=None if latency is None else round(latency, 3),
                          reference=agreement,
                          per_class=dict(zip(names, [round(float(a), 4) for a in per_class])),
                          confusion=matrix.tolist())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
