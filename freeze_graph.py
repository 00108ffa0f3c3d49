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
import argparse
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib

import checkpoints
import config
import data_utils
import datasets
import image_pipeline
import inference

v1 = tf.compat.v1
tf.get_logger().setLevel('ERROR')

# Ops a frozen inference graph may hold; anything else (variables, training ops) is a bug.
INFERENCE_OPS = {'Placeholder', 'Const', 'Conv2D', 'DepthwiseConv2dNative', 'BiasAdd', 'Relu6',
                 'AvgPool', 'Mean', 'Squeeze', 'Reshape', 'Softmax', 'Pad', 'Identity'}
TFLITE_KINDS = ('float32', 'int8')


def freeze(prefix, cfg, num_classes):
    """A frozen, batch-norm-folded GraphDef of the checkpoint."""
    with tf.Graph().as_default() as graph, v1.Session() as sess:
        inference.build_inference_graph(cfg, num_classes)
        inference.restore_for_inference(sess, prefix, cfg)
        outputs = [inference.OUTPUT_NODE, inference.LOGITS_NODE]
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    # toco_compatible: no FusedPadConv2D/FusedResizeAndPadConv2D, which other runtimes lack.
    frozen = optimize_for_inference_lib.optimize_for_inference(
        frozen, [inference.INPUT_NODE], outputs, tf.float32.as_datatype_enum, toco_compatible=True)
    leftover = sorted({node.op for node in frozen.node} - INFERENCE_OPS)
    if leftover:
        raise AssertionError('frozen graph still holds %s' % ', '.join(leftover))
    return frozen


def write_all(outputs):
    """Writes {path: data} all or nothing: every file goes to PATH.tmp first; only once all are
    written does each earlier file step aside to PATH.old and the new one take its place. A
    full disk, an unwritable path, a rename that fails or Ctrl-C puts the earlier files back
    and leaves no .tmp or .old behind."""
    pending, placed = [], []  # temporary files; (path, its earlier file's .old or None)
    try:
        for path, data in outputs.items():
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            pending.append(path + '.tmp')
            with open(path + '.tmp', 'wb' if isinstance(data, bytes) else 'w') as f:
                f.write(data)
        for path in outputs:
            old = path + '.old' if os.path.exists(path) else None
            if old:
                os.replace(path, old)
            placed.append((path, old))
            os.replace(path + '.tmp', path)
            pending.remove(path + '.tmp')
    except BaseException:
        for temp in pending:
            if os.path.isfile(temp):
                os.remove(temp)
        for path, old in reversed(placed):
            if old:
                os.replace(old, path)
            elif os.path.exists(path):
                os.remove(path)
        raise
    for _, old in placed:
        if old:
            os.remove(old)


def metadata(cfg, num_classes, labels, prefix):
    scale_offset = {'cifar': dict(mean=list(data_utils.CIFAR10_MEAN), std=list(data_utils.CIFAR10_STD)),
                    'inception': dict(mean=[127.5] * 3, std=[127.5] * 3)}[cfg['normalization']]
    return dict(
        input=inference.INPUT_NODE, output=inference.OUTPUT_NODE, logits=inference.LOGITS_NODE,
        input_size=cfg['image_size'], input_layout='NHWC', input_channels='RGB',
        input_range=[0, 255], central_fraction=cfg['central_fraction'], num_classes=num_classes,
        labels=labels,
        preprocessing=dict(in_graph=True, mode=cfg['normalization'],
                           formula='(pixel - mean) / std', **scale_offset),
        architecture={k: cfg[k] for k in inference.ARCHITECTURE_KEYS}, checkpoint=prefix)


def to_tflite(graph_def, kind, calibration_images=None):
    """TFLite bytes from the frozen graph: float32, or full-integer calibrated on images."""
    with tf.Graph().as_default() as graph:
        v1.import_graph_def(graph_def, name='')
        with v1.Session(graph=graph) as sess:
            converter = v1.lite.TFLiteConverter.from_session(
                sess, [graph.get_tensor_by_name(inference.INPUT_NODE + ':0')],
                [graph.get_tensor_by_name(inference.OUTPUT_NODE + ':0')])
            if kind == 'int8':
                def representative_dataset():
                    for image in calibration_images:
                        yield [image[None].astype(np.float32)]
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative_dataset
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                # Pixels 0..255 are exactly uint8 with scale 1: no rounding at the input.
                converter.inference_input_type = tf.uint8
                converter.inference_output_type = tf.uint8
            try:
                return converter.convert()
            except Exception as e:  # the converter raises its own ConverterError, not exported
                message = ' '.join(str(e).split())[:300]
                raise inference.ModelError('TFLite %s conversion failed: %s' % (kind, message)) from e


def calibration_set(dataset, data_dir, count, cfg, run, archive=None):
    """`count` training images, drawn at random over the whole set, as evaluation sees them at
    the model's input size; `run` is the run's config.json ({} if none), for its splits."""
    size = cfg['image_size']
    if dataset == 'cifar10':
        data_utils.ensure_cifar10(data_dir, archive=archive)
        images = np.concatenate([data_utils.load_batch(os.path.join(data_dir, name))[0]
                                 for name in data_utils.TRAIN_FILES])
        if count > len(images):
            raise data_utils.DataError('--calibration_images %d: only %d training images in %s'
                                       % (count, len(images), data_dir))
        chosen = images[np.random.RandomState(0).choice(len(images), count, replace=False)]
        return inference.resize_images(chosen, size)
    splits = (datasets.load_folder(data_dir, run.get('val_size', 0), run.get('test_size', 0),
                                   run.get('seed', 0))
              if dataset == 'folder' else datasets.load_tfrecord(data_dir))
    if count > datasets.split_size(splits['train']):
        raise data_utils.DataError('--calibration_images %d: only %d training images in %s'
                                   % (count, datasets.split_size(splits['train']), data_dir))
    try:
        return image_pipeline.sample_views(splits['train'], len(splits['label_names']), count,
                                           size, cfg['central_fraction'])
    except data_utils.DataError as e:
        raise data_utils.DataError('--calibration_images %d: %s in %s' % (count, e, data_dir)) from e


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument('--dataset', choices=datasets.DATASETS, default=None,
                        help="int8 calibration: the training images' dataset, as train.py's "
                             "--dataset (default: the run's, from its config.json, else %r)"
                             % config.DEFAULTS['dataset'])
    parser.add_argument('--data_dir', default=None,
                        help="int8 calibration: the dataset's folder (default: the run's, from "
                             "its config.json, else %r)" % config.DEFAULTS['data_dir'])
    parser.add_argument('--cifar_archive', default=None, metavar='PATH',
                        help='int8 calibration on CIFAR-10: ' + config.HELP['cifar_archive'])
    parser.add_argument('--num_classes', type=int, default=None,
                        help="expected class count; an error if the checkpoint's differs")
    inference.add_architecture_flags(parser)
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


def main(argv=None):
    args = parse_args(argv)
    try:
        prefix = checkpoints.checkpoint_prefix(args.ckpt)
        num_classes = inference.checkpoint_num_classes(prefix)
        if args.num_classes is not None and args.num_classes != num_classes:
            raise inference.ModelError('%s: has %d classes, not --num_classes %d'
                                       % (prefix, num_classes, args.num_classes))
        cfg, labels = inference.resolve_checkpoint_config(prefix,
                                                          inference.architecture_overrides(args))
        labels = inference.label_names(labels, num_classes)
        calibration = None
        if 'int8' in args.tflite_kinds:
            run = checkpoints.read_run_config(prefix)
            dataset = args.dataset or run.get('dataset', config.DEFAULTS['dataset'])
            data_dir = args.data_dir or run.get('data_dir', config.DEFAULTS['data_dir'])
            calibration = calibration_set(dataset, data_dir, args.calibration_images, cfg, run,
                                          args.cifar_archive)
        graph_def = freeze(prefix, cfg, num_classes)
        # Everything is made before anything is written: a failure leaves no mix of old and new files.
        stem = os.path.splitext(args.output)[0]
        outputs = {args.output: graph_def.SerializeToString(),
                   stem + '.json': json.dumps(metadata(cfg, num_classes, labels, prefix), indent=1) + '\n',
                   stem + '_labels.txt': '\n'.join(labels) + '\n'}
        for kind in args.tflite_kinds:
            outputs[stem + ('_int8' if kind == 'int8' else '') + '.tflite'] = to_tflite(
                graph_def, kind, calibration)
    except (inference.ModelError, data_utils.DataError) as e:
        print('freeze_graph.py: error: %s' % e, file=sys.stderr)
        return 2
    try:
        write_all(outputs)
    except OSError as e:
        path = (e.filename or args.output).removesuffix('.tmp')
        print('freeze_graph.py: error: %s: cannot write (%s)' % (path, e.strerror or e),
              file=sys.stderr)
        return 2
    for path, data in outputs.items():
        print('wrote %s (%s bytes)' % (path, format(len(data), ',')))
    # A TFLite file of an earlier freeze would not match the metadata just written.
    for kind in TFLITE_KINDS:
        stale = stem + ('_int8' if kind == 'int8' else '') + '.tflite'
        if stale not in outputs and os.path.exists(stale):
            os.remove(stale)
            print('removed %s (from an earlier freeze)' % stale)
    print(json.dumps(dict(checkpoint=prefix, files=list(outputs), input=inference.INPUT_NODE,
                          output=inference.OUTPUT_NODE, logits=inference.LOGITS_NODE)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
