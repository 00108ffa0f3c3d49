"""Classify image files with a checkpoint, a frozen .pb, a .tflite or a .onnx.

    python3 predict.py frozen/mobilenet_v1.pb cat.jpg truck.png --top_k 3

Images of any size (PNG, JPEG, anything Pillow reads) are decoded to the 8-bit
RGB a viewer shows, as the folder datasets decode them (datasets/image_files.py), and
seen as the model's evaluation saw its images: resized whole for a model of
32x32 images or of CIFAR-10, the central 87.5% resized for own images at other
sizes (TF-Slim's evaluation view). One line per image; the last line is JSON.
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from datasets import image_files
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors


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
    command_line.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error('--top_k must be at least 1, got %d' % args.top_k)
    return args


def predict(args):
    if args.labels and not os.path.exists(args.labels):
        raise errors.UsageError('--labels %s: no such file' % args.labels)
    cpu_kernels.import_tensorflow()  # only once the flags are good
    from deployment import models
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


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('predict.py', lambda: predict(args))


if __name__ == '__main__':
    sys.exit(main())
