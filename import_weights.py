"""Import published MobileNetV1 weights as a checkpoint under TF-Slim's names.

    python3 import_weights.py slim:mobilenet_v1_0.75_192 pretrained/imagenet/mobilenet_v1_0.75_192
    python3 import_weights.py mobilenet_v1_0.5_160_quant.tflite imported/mobilenet_v1_0.5_160 --labels labels.txt
    python3 import_weights.py ssd_mobilenet_v1.tflite imported/ssd_backbone
    python3 import_weights.py mobilenet_1_0_224_tf.h5 imported/keras_1.0_224

SOURCE is one of:
  slim:mobilenet_v1_{1.0,0.75,0.5,0.25}_{224,192,160,128}[_quant]
      TF-Slim's published ImageNet checkpoint, downloaded from its official URL into
      --cache_dir (once), checked, and written with its settings;
  FILE.tflite
      a MobileNetV1 classifier, float or quantized (weights dequantized; batch norm folded into
      the file becomes identity batch norm), or the backbone of a network built on it (the TF
      Object Detection API's SSD-MobileNetV1: the base alone);
  FILE.h5 or FILE.keras
      Keras's MobileNet (the file keras.applications.MobileNet(weights='imagenet') caches, or a
      saved model): conv1, conv_dw_N, conv_pw_N, conv_preds.

Writes OUT_PREFIX.index and OUT_PREFIX.data-00000-of-00001 (slim's names: train.py
--pretrain_path, evaluate.py, predict.py and freeze_graph.py take it) and OUT_PREFIX.json (its
width, input size, preprocessing, class names, where it came from), all or nothing. Before
writing, the import is run beside its source (TFLite's interpreter, Keras) on probe pictures:
a float source must give the same top-1 and probabilities within 1e-4, a quantized one the
same top-1 on most and its last feature map within 35% (the published 8-bit files: 7-15%), or
nothing is written; the line says how close it is. The last line is JSON.
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from preflight import command_line
from preflight import cpu_kernels
from preflight import errors
from preflight import files

KERAS_SUFFIXES = ('.h5', '.hdf5', '.keras')
# TF-Slim's official archives (research/slim/nets/mobilenet_v1.md).
SLIM_URL = 'http://download.tensorflow.org/models/mobilenet_v1_2018_08_02/{name}.tgz'


def default_cache_dir():
    """Where downloads are kept: $XDG_CACHE_HOME (else ~/.cache)/mobilenet_v1."""
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(root, 'mobilenet_v1')


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('source', help='slim:mobilenet_v1_WIDTH_SIZE[_quant], FILE.tflite, '
                                       'FILE.h5 or FILE.keras')
    parser.add_argument('out_prefix', help='checkpoint prefix to write (OUT_PREFIX.index, '
                                           '.data-00000-of-00001, .json)')
    parser.add_argument('--cache_dir', default=None,
                        help="slim: where archives are downloaded and kept (default: %s)"
                             % default_cache_dir())
    parser.add_argument('--slim_url', default=SLIM_URL,
                        help="slim: where TF-Slim's archives are downloaded from, {name} standing "
                             'for mobilenet_v1_WIDTH_SIZE[_quant] (default: %(default)s)')
    parser.add_argument('--labels', default=None,
                        help='class names, one a line, stored with the import (a file of one '
                             "name more or fewer than the model's classes: the background "
                             'class of 1001-class models is dropped or added)')
    parser.add_argument('--normalization', choices=('inception', 'cifar'), default=None,
                        help='a float TFLite input that says nothing of its preprocessing: how '
                             "pixels map to it (inception: [-1, 1], as TF-Slim's and Keras's "
                             'ImageNet models)')
    args = parser.parse_args(argv)
    if os.path.basename(args.out_prefix) in ('', '.', '..'):
        parser.error('out_prefix %r names no file; pass a prefix such as DIR/mobilenet_v1_0.75_192'
                     % args.out_prefix)
    if args.out_prefix.endswith(('.index', '.json')) or '.data-' in os.path.basename(
            args.out_prefix):
        parser.error('out_prefix is the checkpoint prefix, without .index, .data-... or .json; '
                     'got %r' % args.out_prefix)
    kind = source_kind(args.source)
    try:
        formatted = args.slim_url.format(name='')
    except (KeyError, IndexError, ValueError):
        formatted = args.slim_url
    if formatted == args.slim_url:
        parser.error('--slim_url must hold {name} and no other braces, got %r' % args.slim_url)
    if kind is None:
        parser.error('source %r: expected slim:mobilenet_v1_WIDTH_SIZE[_quant], a .tflite, .h5 '
                     'or .keras file' % args.source)
    args.kind = kind
    args.cache_dir = args.cache_dir or default_cache_dir()
    return args


def source_kind(source):
    if source.startswith('slim:'):
        return 'slim'
    if source.endswith('.tflite'):
        return 'tflite'
    if source.endswith(KERAS_SUFFIXES):
        return 'keras'
    return None


def import_weights(args):
    if os.path.isdir(args.out_prefix):
        raise errors.UsageError('%s is a folder; name the checkpoint prefix to write in it, e.g. '
                                '%s' % (args.out_prefix, os.path.join(args.out_prefix, 'model.ckpt')))
    blocker = files.file_in_the_way(os.path.dirname(os.path.abspath(args.out_prefix)))
    if blocker:
        raise errors.UsageError('%s: %s is a file, not a folder' % (args.out_prefix, blocker))
    if args.kind != 'slim' and not os.path.isfile(args.source):
        raise errors.UsageError('%s: no such file' % args.source)
    if args.labels and not os.path.exists(args.labels):
        raise errors.UsageError('--labels %s: no such file' % args.labels)
    if args.kind == 'slim' and files.file_in_the_way(args.cache_dir):
        raise errors.UsageError('--cache_dir %s: %s is a file, not a folder'
                                % (args.cache_dir, files.file_in_the_way(args.cache_dir)))
    sidecar = args.out_prefix + '.json'
    if os.path.exists(sidecar) and not _an_import(sidecar):
        raise errors.UsageError('%s: exists and is not an import\'s settings (freeze_graph.py\'s '
                                'metadata?); name another out_prefix' % sidecar)
    cpu_kernels.import_tensorflow()  # only once the flags are good
    from deployment import models
    from importing import agreement
    from importing import imported
    item, reference = read_source(args)
    if args.labels:
        if not item.num_classes:
            raise errors.UsageError('--labels %s: the import has no classifier head (the base '
                                    'alone) to name classes of' % args.labels)
        item.labels, note = models.read_labels(args.labels, item.num_classes)
        if note:
            item.notes.append(note)
    s = item.settings
    if args.normalization and args.normalization != s['normalization']:
        item.notes.append('--normalization %s not taken: the source says %s' % (
            args.normalization, s['normalization']))
    print('Found MobileNetV1 width %g, %dx%d input (%s stem%s), %s, %s normalization; from %s' % (
        s['width'], s['image_size'], s['image_size'], s['stem'],
        ', explicit padding' if s['use_explicit_padding'] else '',
        '%d classes%s' % (item.num_classes, ' (class 0: background)' if item.num_classes == 1001
                          else '') if item.num_classes else 'no classifier head',
        s['normalization'], item.source), flush=True)
    for note in item.notes:
        print('Note: %s' % note, flush=True)
    variables = imported.slim_variables(item)
    check = None
    if reference is not None:
        pictures = agreement.probe_pictures(s['image_size'])
        check = agreement.compare(item, variables, reference, pictures)
        line = 'Checked against %s on %d probe pictures: %s' % (
            reference.runtime, check['images'], agreement.describe(check))
        print(line, flush=True)
        if not agreement.reproduces(check, item.quantized):
            raise errors.ModelError('%s: the import does not reproduce it (%s); not a MobileNetV1 '
                                    'this importer reads right; nothing written'
                                    % (args.source, agreement.describe(check)))
    try:
        imported.write(args.out_prefix, variables, imported.run_settings(item))
    except OSError as e:
        raise errors.UsageError('%s: cannot write (%s)' % (e.filename or args.out_prefix,
                                                           e.strerror or e)) from e
    print('wrote %s.index, .data-00000-of-00001 and .json (%d variables under MobilenetV1/)'
          % (args.out_prefix, len(variables)), flush=True)
    print(json.dumps(dict(checkpoint=args.out_prefix, source=args.source,
                          num_classes=item.num_classes, check=check,
                          **{k: s[k] for k in ('width', 'image_size', 'normalization')})))


def _an_import(path):
    try:
        with open(path) as f:
            return 'imported_from' in json.load(f)
    except (OSError, ValueError, TypeError):
        return False


def read_source(args):
    """(Imported, reference function or None) of the source named."""
    if args.kind == 'slim':
        from importing import slim_archives
        return slim_archives.read(args.source[len('slim:'):], args.cache_dir, args.slim_url), None
    if args.kind == 'keras':
        from importing import from_keras
        return from_keras.read(args.source)
    from deployment import models
    from importing import from_tflite
    try:
        embedded = models.tflite_normalization(args.source)
    except Exception:  # not TFLite at all: from_tflite says so, naming the file
        embedded = None
    return from_tflite.read(args.source, args.normalization, embedded,
                            models.read_metadata(args.source))


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('import_weights.py', lambda: import_weights(args), terminate=True)


if __name__ == '__main__':
    sys.exit(main())
