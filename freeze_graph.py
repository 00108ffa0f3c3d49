"""Freeze a trained checkpoint into a self-contained .pb (and TFLite) for devices.

    python3 freeze_graph.py                                   # latest checkpoint in ckpt/
    python3 freeze_graph.py --ckpt ckpt/best --output frozen/mobilenet_v1.pb --tflite float32,int8

The graph is rebuilt for inference (batch norm on its moving statistics, no
dropout, no training ops), variables become constants and batch norm is folded
into the convolutions. Preprocessing is inside the graph, so the model takes raw
RGB pixels:

    input                               float32 [batch, S, S, 3], 0..255, NHWC, RGB
    MobilenetV1/Predictions/Reshape_1   float32 [batch, classes], softmax probabilities
    MobilenetV1/Logits/SpatialSqueeze   float32 [batch, classes], logits

Beside OUTPUT.pb go OUTPUT.json (input size, the central share of a photo the
model was scored on, classes, labels, width, preprocessing, node names) and
OUTPUT_labels.txt; with --tflite, OUTPUT.tflite (float32) and OUTPUT_int8.tflite
(full-integer: uint8 pixels in, uint8 probabilities out, calibrated on training
images of the run's dataset, seen as evaluation sees them).
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import config
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors
from preflight import files

TFLITE_KINDS = ('float32', 'int8')


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('--ckpt', default=config.DEFAULTS['ckpt_dir'],
                        help='checkpoint prefix, or a folder: its latest checkpoint (default: %(default)s)')
    parser.add_argument('--output', default='frozen/mobilenet_v1.pb',
                        help='frozen graph to write; metadata, labels and TFLite go beside it '
                             '(default: %(default)s)')
    parser.add_argument('--tflite', default='float32',
                        help="comma-separated TFLite files to write: float32, int8, or 'none' "
                             '(default: %(default)s)')
    parser.add_argument('--calibration_images', type=int, default=500,
                        help='training images that calibrate the int8 model (default: %(default)s)')
    command_line.add_data_flags(parser, 'int8 calibration', ('dataset', 'data_dir', 'cifar_archive'))
    parser.add_argument('--num_classes', type=int, default=None,
                        help="expected class count; an error if the checkpoint's differs")
    command_line.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    kinds = [] if args.tflite == 'none' else args.tflite.split(',')
    bad = [k for k in kinds if k not in TFLITE_KINDS]
    if bad:
        parser.error("--tflite: unknown kind %s; pass float32, int8, 'float32,int8' or none"
                     % ', '.join(bad))
    if not args.output.endswith('.pb'):
        parser.error('--output must name a .pb file (metadata and TFLite go beside it), got %r'
                     % args.output)
    if 'int8' in kinds and args.calibration_images < 1:
        parser.error('--calibration_images must be at least 1 for --tflite int8, got %d'
                     % args.calibration_images)
    args.tflite_kinds = kinds
    return args


def freeze_graph(args):
    # Found now, not after freezing and converting.
    if os.path.isdir(args.output):
        raise errors.UsageError('--output %s is a folder; name the .pb file to write'
                                % args.output)
    blocker = files.file_in_the_way(os.path.dirname(args.output))
    if blocker:
        raise errors.UsageError('--output %s: %s is a file, not a folder' % (args.output, blocker))
    cpu_kernels.import_tensorflow()  # only once the flags are good
    from checkpoints import reading
    from checkpoints import run_files
    from datasets import decoding
    from deployment import freezing
    from deployment import models
    from tasks import classifier
    prefix = reading.checkpoint_prefix(args.ckpt)
    num_classes = models.checkpoint_num_classes(prefix)
    if args.num_classes is not None and args.num_classes != num_classes:
        raise errors.ModelError('%s: has %d classes, not --num_classes %d'
                                % (prefix, num_classes, args.num_classes))
    cfg, run = models.resolve_checkpoint_config(prefix, command_line.architecture_overrides(args))
    labels = models.label_names(prefix, run.get('label_names'), num_classes,
                                "label_names in its run's config.json")
    calibration = None
    if 'int8' in args.tflite_kinds:
        calibration = freezing.calibration_set(run_files.data_settings(run, vars(args)),
                                               args.calibration_images, cfg)
        skipped = decoding.skipped_images()
        if skipped:
            print('Calibration skipped %d image(s) that do not decode: %s' % (len(skipped), '; '.join(
                '%s (%s)' % (name, skipped[name]) for name in sorted(skipped)[:10])), flush=True)
    graph_def = freezing.freeze(prefix, cfg, num_classes)
    # Everything is made before anything is written: a failure leaves no mix of old and new files.
    stem = os.path.splitext(args.output)[0]
    outputs = {args.output: graph_def.SerializeToString(),
               stem + '.json': json.dumps(freezing.metadata(cfg, num_classes, labels, prefix),
                                          indent=1) + '\n',
               stem + '_labels.txt': '\n'.join(labels) + '\n'}
    for kind in args.tflite_kinds:
        outputs[stem + ('_int8' if kind == 'int8' else '') + '.tflite'] = freezing.to_tflite(
            graph_def, kind, calibration)
    try:
        files.write_files(outputs)
    except OSError as e:
        path = (e.filename or args.output).removesuffix('.tmp')
        raise errors.UsageError('%s: cannot write (%s)' % (path, e.strerror or e)) from e
    for path, data in outputs.items():
        print('wrote %s (%s bytes)' % (path, format(len(data), ',')))
    # A TFLite file of an earlier freeze would not match the metadata just written.
    for kind in TFLITE_KINDS:
        stale = stem + ('_int8' if kind == 'int8' else '') + '.tflite'
        if stale not in outputs and os.path.exists(stale):
            os.remove(stale)
            print('removed %s (from an earlier freeze)' % stale)
    print(json.dumps(dict(checkpoint=prefix, files=list(outputs), input=classifier.INPUT_NODE,
                          output=classifier.OUTPUT_NODE, logits=classifier.LOGITS_NODE)))


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('freeze_graph.py', lambda: freeze_graph(args),
                              terminate=True)  # SIGTERM cleans up as Ctrl-C does


if __name__ == '__main__':
    sys.exit(main())
