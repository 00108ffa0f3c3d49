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
images of the run's dataset, seen as evaluation sees them); with --onnx,
OUTPUT.onnx (tf2onnx: the same NHWC input, input:0, and outputs, NAME:0).

The backbone of a detector, its feature maps at any end points:

    python3 freeze_graph.py --ckpt imported/ssd_backbone --backbone Conv2d_5_pointwise,Conv2d_11_pointwise,Conv2d_13_pointwise --image_size 416

takes the same input (any size a multiple of 32, HxW, or 'dynamic' in the .pb
alone) and gives one output per end point, named as it (Conv2d_5_pointwise,
stride 8); OUTPUT.json lists each output's stride and channels.

A detector (a run of train.py --task detect) is frozen whole, box decoding and per-class
non-max suppression inside:

    python3 freeze_graph.py --ckpt runs/yolo --output frozen/yolo.pb --tflite float32,int8 --onnx

    input    float32 [1, S, S, 3], 0..255 RGB, the photo letterboxed to S (scaled whole to
             fit, centred on grey 128)
    boxes    float32 [max, 4]   x1, y1, x2, y2 in the input's pixels, best first
    scores   float32 [max]; classes int32 [max]; count int32 (rows past it are zero)

Its int8 TFLite runs the convolutions in 8 bits and the decoding in float32 (float32 input
and outputs); OUTPUT.json says the anchors, thresholds and class names. For runtimes without a
suppression op (OpenCV's dnn reads the ONNX file), --nms 0 leaves it out:

    candidate_boxes   float32 [1, N, 4]  every anchor's box, x1, y1, x2, y2 in input pixels
    candidate_scores  float32 [1, N, C]  its objectness x each class's probability

to suppress with cv2.dnn.NMSBoxesBatched (score_threshold, iou_threshold from OUTPUT.json);
evaluate.py and predict.py run such files, suppressing as the graph would.
"""
import argparse
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


def input_size(text):
    """--image_size: 'S' (S, S), 'HxW' (H, W) or 'dynamic' (None, None)."""
    if text == 'dynamic':
        return None, None
    parts = text.lower().split('x')
    sides = [int(part) for part in parts] if all(part.isdigit() for part in parts) else []
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise argparse.ArgumentTypeError("%r: pass a size S, HxW or 'dynamic'" % text)
    return sides[0], sides[-1]


def size_text(shape):
    return 'dynamic' if shape[0] is None else '%dx%d' % shape


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('--ckpt', default=config.DEFAULTS['ckpt_dir'],
                        help='checkpoint prefix, or a folder: its latest checkpoint (default: %(default)s)')
    parser.add_argument('--output', default='frozen/mobilenet_v1.pb',
                        help='frozen graph to write; metadata, labels and TFLite go beside it '
                             '(default: %(default)s)')
    parser.add_argument('--tflite', default=None,
                        help="comma-separated TFLite files to write: float32, int8, or 'none' "
                             "(default: float32; none for --image_size dynamic)")
    parser.add_argument('--onnx', action='store_true',
                        help='also write OUTPUT.onnx (tf2onnx), the graph ONNX Runtime runs')
    parser.add_argument('--nms', type=command_line.parse_bool, default=True, metavar='BOOL',
                        help="a detector: 0 leaves non-max suppression out, giving every "
                             "anchor's box and scores, for runtimes without a suppression op "
                             "(OpenCV's dnn) (default: 1)")
    parser.add_argument('--calibration_images', type=int, default=500,
                        help='training images that calibrate the int8 model (default: %(default)s)')
    command_line.add_data_flags(parser, 'int8 calibration', ('dataset', 'data_dir', 'cifar_archive'))
    parser.add_argument('--num_classes', type=int, default=None,
                        help="expected class count; an error if the checkpoint's differs")
    parser.add_argument('--backbone', default='',
                        help='freeze the feature extractor of a detector in place of the '
                             'classifier: comma-separated end points (Conv2d_0, '
                             'Conv2d_1_depthwise, ..., Conv2d_13_pointwise), its outputs; '
                             "'detection' for the stride 8, 16 and 32 maps YOLOv3 ports take "
                             '(Conv2d_5_pointwise, Conv2d_11_pointwise, Conv2d_13_pointwise)')
    command_line.add_architecture_flags(parser, image_size=(input_size, (
        "the frozen graph's input: S (SxS); with --backbone also HxW, or 'dynamic' (any size, the "
        ".pb and ONNX alone) (default: the checkpoint's, from its config.json, else %d)"
        % config.DEFAULTS['image_size'])))
    args = parser.parse_args(argv)
    args.input_shape, args.image_size = args.image_size, None
    if args.input_shape and args.input_shape[0] == args.input_shape[1]:
        args.image_size = args.input_shape[0]  # the classifier's, or None for dynamic
    if args.input_shape and not args.backbone and args.image_size is None:
        parser.error('--image_size %s: the classifier takes square images of a fixed size; '
                     'non-square and dynamic sizes are for --backbone' % size_text(args.input_shape))
    dynamic = args.input_shape == (None, None)
    tflite = args.tflite or ('none' if dynamic else 'float32')
    kinds = [] if tflite == 'none' else tflite.split(',')
    bad = [k for k in kinds if k not in TFLITE_KINDS]
    if bad:
        parser.error("--tflite: unknown kind %s; pass float32, int8, 'float32,int8' or none"
                     % ', '.join(bad))
    if kinds and dynamic:
        parser.error('--tflite %s: TFLite takes a fixed input size, not --image_size dynamic; '
                     'pass --tflite none, or a size' % tflite)
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
    from deployment import freezing
    from deployment import models
    prefix = reading.checkpoint_prefix(args.ckpt)
    cfg, run = models.resolve_checkpoint_config(prefix, command_line.architecture_overrides(args))
    from deployment import detectors
    if detectors.is_detector(run) and not args.backbone:
        return write(args, *detector_files(args, prefix, run))
    if not args.nms:
        raise errors.UsageError('--nms 0: %s has no suppression to leave out; --nms is for a '
                                "detector's run (train.py --task detect)" % (
                                    'a backbone' if args.backbone else 'a classifier'))
    if args.backbone:
        backbone = backbone_of(args, cfg)
        made = dict(metadata=freezing.backbone_metadata(cfg, backbone, prefix), labels=None)
    else:
        backbone = None
        made = classifier_files(args, prefix, cfg, run)
    calibration = calibration_images(args, cfg, run) if 'int8' in args.tflite_kinds else None
    graph_def = freezing.freeze(prefix, cfg, made.get('num_classes'), backbone)
    outputs_of_graph = freezing.output_nodes(backbone)
    tflite_outputs = outputs_of_graph[:1] if not backbone else outputs_of_graph
    nodes = dict(outputs=outputs_of_graph) if backbone else dict(
        output=outputs_of_graph[0], logits=outputs_of_graph[1])
    return write(args, prefix, made, graph_def, outputs_of_graph, tflite_outputs, calibration,
                 nodes)


def detector_files(args, prefix, run):
    """(prefix, made, graph_def, outputs, TFLite outputs, calibration, nodes) of a detector."""
    from deployment import detectors
    overrides = dict(image_size=args.image_size)
    cfg = detectors.resolve_config(prefix, run, overrides)  # UsageError for a size it cannot take
    labels = run['label_names']
    made = dict(labels=labels, metadata=detectors.metadata(cfg, labels, prefix, run, args.nms))
    calibration = detectors.calibration_set(
        dict(run, **{k: v for k, v in vars(args).items() if k in ('dataset', 'data_dir')
                     and v is not None}), args.calibration_images, cfg['image_size']) \
        if 'int8' in args.tflite_kinds else None
    graph_def = detectors.freeze(prefix, cfg, len(labels), args.nms)
    outputs = detectors.output_nodes(args.nms)
    return prefix, made, graph_def, outputs, outputs, calibration, dict(outputs=outputs)


def write(args, prefix, made, graph_def, outputs_of_graph, tflite_outputs, calibration, nodes):
    """Converts and writes every file, or none (a failure leaves no mix of old and new)."""
    from deployment import freezing
    detector = made['metadata'].get('task') == 'detect'
    stem = os.path.splitext(args.output)[0]
    outputs = {args.output: graph_def.SerializeToString(),
               stem + '.json': json.dumps(made['metadata'], indent=1) + '\n'}
    if made['labels']:
        outputs[stem + '_labels.txt'] = '\n'.join(made['labels']) + '\n'
    for kind in args.tflite_kinds:
        outputs[stem + ('_int8' if kind == 'int8' else '') + '.tflite'] = freezing.to_tflite(
            graph_def, kind, calibration, tflite_outputs, float_tail=detector)
    if args.onnx:
        outputs[stem + '.onnx'] = freezing.to_onnx(graph_def, outputs_of_graph)
    try:
        files.write_files(outputs)
    except OSError as e:
        path = (e.filename or args.output).removesuffix('.tmp')
        raise errors.UsageError('%s: cannot write (%s)' % (path, e.strerror or e)) from e
    for path, data in outputs.items():
        print('wrote %s (%s bytes)' % (path, format(len(data), ',')))
    # Files of an earlier freeze that would not match the metadata just written.
    for stale in [stem + '_int8.tflite', stem + '.tflite', stem + '.onnx', stem + '_labels.txt']:
        if stale not in outputs and os.path.exists(stale):
            os.remove(stale)
            print('removed %s (from an earlier freeze)' % stale)
    print(json.dumps(dict(checkpoint=prefix, files=list(outputs), input=freezing.INPUT_NODE,
                          **nodes)))


def backbone_of(args, cfg):
    """(end points, height, width) of --backbone and --image_size; UsageError for an end point
    the base has not, or a size its strides do not divide."""
    import mobilenet
    names = mobilenet.end_point_names()
    end_points = list(mobilenet.DETECTION_END_POINTS) if args.backbone == 'detection' else [
        name.strip() for name in args.backbone.split(',') if name.strip()]
    unknown = [name for name in end_points if name not in names]
    if unknown or not end_points:
        raise errors.UsageError('--backbone %s: %s; end points are %s, or pass detection'
                                % (args.backbone, 'not an end point of MobileNetV1' if unknown
                                   else 'names no end point', ', '.join(names)))
    if len(set(end_points)) < len(end_points):
        raise errors.UsageError('--backbone %s: names an end point twice' % args.backbone)
    strides = mobilenet.end_point_strides(mobilenet.STEMS[cfg['stem']])
    if args.backbone == 'detection' and cfg['stem'] != 'imagenet':
        print('Note: --stem %s: the detection end points are at strides %s, not 8, 16 and 32'
              % (cfg['stem'], ', '.join(str(strides[n]) for n in end_points)), flush=True)
    height, width = args.input_shape or (cfg['image_size'], cfg['image_size'])
    stride = max(strides[n] for n in end_points)
    if height is not None and (height % stride or width % stride):
        raise errors.UsageError('--image_size %s: %s has stride %d; pass sides that are multiples '
                                'of %d (e.g. %d)' % (size_text((height, width)), max(
                                    end_points, key=names.index), stride, stride,
                                    -(-max(height, width) // stride) * stride))
    if 'int8' in args.tflite_kinds and height != width:
        raise errors.UsageError('--tflite int8 --image_size %s: its calibration images are square; '
                                'pass a square size' % size_text((height, width)))
    return end_points, height, width


def classifier_files(args, prefix, cfg, run):
    """{'num_classes', 'labels', 'metadata'} of the classifier frozen from the checkpoint."""
    from deployment import freezing
    from deployment import models
    num_classes = models.checkpoint_num_classes(prefix)
    if args.num_classes is not None and args.num_classes != num_classes:
        raise errors.ModelError('%s: has %d classes, not --num_classes %d'
                                % (prefix, num_classes, args.num_classes))
    labels = models.label_names(prefix, run.get('label_names'), num_classes,
                                "label_names in its run's config.json")
    return dict(num_classes=num_classes, labels=labels,
                metadata=freezing.metadata(cfg, num_classes, labels, prefix))


def calibration_images(args, cfg, run):
    """The int8 model's calibration images, drawn from the run's training data."""
    from checkpoints import run_files
    from datasets import decoding
    from deployment import freezing
    calibration = freezing.calibration_set(run_files.data_settings(run, vars(args)),
                                           args.calibration_images, cfg)
    skipped = decoding.skipped_images()
    if skipped:
        print('Calibration skipped %d image(s) that do not decode: %s' % (len(skipped), '; '.join(
            '%s (%s)' % (name, skipped[name]) for name in sorted(skipped)[:10])), flush=True)
    return calibration


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('freeze_graph.py', lambda: freeze_graph(args),
                              terminate=True)  # SIGTERM cleans up as Ctrl-C does


if __name__ == '__main__':
    sys.exit(main())
