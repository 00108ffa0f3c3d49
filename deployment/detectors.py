"""The detector trained by train.py --task detect, for inference: rebuilt from its checkpoint,
frozen (decoding and non-max suppression inside), converted to TFLite and ONNX, and run from
any of these files on letterboxed photos.

Every form takes one image, float32 [1, S, S, 3] raw 0..255 RGB pixels letterboxed to S
(pipelines/detection.letterbox), and gives (tasks/detector.OUTPUT_NODES):
    boxes    float32 [max, 4]  x1, y1, x2, y2 in the input's pixels
    scores   float32 [max]     best first
    classes  int32 [max]       class index (the run's label_names)
    count    int32             detections kept; rows past it are zero
Frozen without suppression (.json 'suppression': false), a file gives every anchor's box and
class scores (tasks/detector.CANDIDATE_NODES) and the detectors here suppress as the graph would.
"""
import json
import os

import numpy as np
import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib

import config
from checkpoints import reading
from checkpoints import run_files
from datasets import detections
from deployment import freezing
from detection import postprocess
from pipelines import detection as pipeline
from preflight.errors import DataError, ModelError, UsageError
from tasks import detector

v1 = tf.compat.v1

# What a detector's checkpoint brings from its run's config.json besides the architecture.
DETECTOR_KEYS = ('detect_end_points', 'head', 'head_depth', 'score_threshold', 'iou_threshold',
                 'max_detections')

PREDICTIONS = 'YoloV3/Scale_32/Predictions/biases'


def is_detector(run):
    return run.get('task') == 'detect'


def resolve_config(prefix, run, overrides=None):
    """The detector's settings: the run's (architecture, head, anchors, class names), with
    `overrides` (image_size, score_threshold, ...) not None on top."""
    if 'anchor_boxes' not in run:
        raise ModelError('%s: its config.json has no anchor_boxes; is it a run of train.py '
                         '--task detect?' % prefix)
    cfg = {k: run.get(k, config.DEFAULTS[k]) for k in config.ARCHITECTURE_KEYS + DETECTOR_KEYS}
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg.update(anchor_boxes=run['anchor_boxes'], weight_decay=0.0, regularize_depthwise=False,
               init_stddev=0.0, trainable_scopes='', freeze_batch_norm=False,
               batch_norm_decay=run.get('batch_norm_decay', config.DEFAULTS['batch_norm_decay']),
               batch_norm_epsilon=run.get('batch_norm_epsilon',
                                          config.DEFAULTS['batch_norm_epsilon']))
    # Found here, for every tool: at another size the upsampled map is not the finer one's,
    # and building the graph fails deep inside TensorFlow.
    deepest = max(detector.strides(cfg))
    if cfg['image_size'] % deepest:
        raise UsageError('--image_size %d: the detector takes multiples of %d (its deepest '
                         'stride), e.g. %d' % (cfg['image_size'], deepest, max(
                             deepest, round(cfg['image_size'] / deepest) * deepest)))
    return cfg


def check_frozen_settings(model, path, given):
    """UsageError for `given` settings ({flag: value}, None: not given) that a frozen detector
    cannot take: its input size and thresholds are part of the graph, and scoring it at other
    ones would give the frozen ones' figures under the flags' names."""
    if isinstance(model, CheckpointDetector):
        return
    frozen = dict(image_size=model.input_size, **model.frozen_with)
    for flag, value in given.items():
        if value is not None and flag in frozen and value != frozen[flag]:
            raise UsageError('--%s %s: %s was frozen with %s %s, part of its graph; pass the '
                             'checkpoint to use another' % (flag, value, path, flag,
                                                            frozen[flag]))


def restore(sess, prefix, cfg):
    """Restores the backbone's and the head's variables; ModelError naming a mismatch."""
    reader, shapes = reading.open_checkpoint(prefix)
    matched, mismatched = reading.match_variables(
        v1.global_variables(scope='MobilenetV1/') + v1.global_variables(scope='YoloV3/'), shapes)
    if mismatched:
        raise ModelError('%s: %s; its config.json does not describe it' % (prefix, mismatched[0]))
    reading.assign_from_checkpoint(sess, prefix, reader, matched)


def output_nodes(suppress):
    return list(detector.OUTPUT_NODES if suppress else detector.CANDIDATE_NODES)


def freeze(prefix, cfg, num_classes, suppress=True):
    """The frozen GraphDef (batch norm folded) of the detector at cfg's image_size, with or
    without its suppression."""
    with tf.Graph().as_default() as graph, v1.Session() as sess:
        detector.inference_graph(cfg, num_classes, suppress=suppress)
        restore(sess, prefix, cfg)
        outputs = output_nodes(suppress)
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    return optimize_for_inference_lib.optimize_for_inference(
        frozen, [detector.INPUT_NODE], outputs, tf.float32.as_datatype_enum, toco_compatible=True)


def metadata(cfg, labels, prefix, run, suppress=True):
    """What a frozen detector's .json says: its input, outputs, classes and thresholds, and
    the data its run trained on (evaluate.py scores that unless told otherwise)."""
    return dict(task='detect', input=detector.INPUT_NODE, outputs=output_nodes(suppress),
                suppression=suppress, input_size=cfg['image_size'], input_layout='NHWC',
                input_channels='RGB', input_range=[0, 255],
                resize='letterbox: scaled to fit, centred on grey 128',
                box_format='x1, y1, x2, y2 in input pixels', labels=labels,
                num_classes=len(labels), anchors=cfg['anchor_boxes'],
                score_threshold=cfg['score_threshold'], iou_threshold=cfg['iou_threshold'],
                max_detections=cfg['max_detections'],
                preprocessing=freezing.preprocessing(cfg),
                architecture={k: cfg[k] for k in config.ARCHITECTURE_KEYS + DETECTOR_KEYS},
                data={k: run[k] for k in config.DATA_KEYS if k in run}, checkpoint=prefix)


def calibration_set(run, count, image_size):
    """`count` training photos of the run's dataset, letterboxed (int8 calibration)."""
    loaded = detections.load(run['dataset'], run['data_dir'], run.get('val_size', 0),
                             run.get('test_size', 0), run.get('seed', 0))
    train = loaded['train']
    order = np.random.RandomState(0).permutation(train.num_images)
    images = []
    for index in order:
        image, ok = pipeline.evaluation_example(train, int(index), image_size)
        if ok:
            images.append(image)
        if len(images) == count:
            return np.stack(images)
    raise DataError('--calibration_images %d: only %d training photos of %s decode'
                    % (count, len(images), run['data_dir']))


class _Detector:
    """Detections of one letterboxed image: (boxes, scores, classes, count). `run`: the
    settings of the run it came from (its data), `labels` its class names."""
    input_size = None
    labels = None
    run = None
    outputs_named = detector.OUTPUT_NODES
    suppression = None  # of a file frozen without its own

    def detect(self, image):
        found = self.run_model(np.asarray(image, np.float32)[None])
        return self.suppression(*found) if self.suppression else found

    def run_model(self, images):
        """The model's outputs (outputs_named) for images [1, S, S, 3]."""
        raise NotImplementedError

    def read_info(self, info):
        self.input_size, self.labels, self.run = info['input_size'], info['labels'], info['data']
        self.frozen_with = {k: info.get(k) for k in ('score_threshold', 'iou_threshold',
                                                     'max_detections')}
        if not info.get('suppression', True):
            self.outputs_named = detector.CANDIDATE_NODES
            self.suppression = _Suppression(self.frozen_with, len(self.labels), self.input_size)


class _Suppression:
    """The frozen graph's own suppression (postprocess.select, its thresholds), for a file
    frozen without it: (boxes [1, N, 4], scores [1, N, C]) -> (boxes, scores, classes, count)."""

    def __init__(self, thresholds, num_classes, size):
        graph = tf.Graph()
        with graph.as_default():
            self.boxes = v1.placeholder(tf.float32, [1, None, 4])
            self.scores = v1.placeholder(tf.float32, [1, None, num_classes])
            self.found = postprocess.select(
                self.boxes[0], self.scores[0], thresholds['score_threshold'],
                thresholds['iou_threshold'], thresholds['max_detections'], size=(size, size))
        graph.finalize()
        self.sess = v1.Session(graph=graph)

    def __call__(self, boxes, scores):
        return self.sess.run(self.found, {self.boxes: boxes, self.scores: scores})


class CheckpointDetector(_Detector):
    def __init__(self, prefix, run, overrides=None):
        cfg = resolve_config(prefix, run, overrides)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images, self.outputs = detector.inference_graph(cfg, len(run['label_names']))
            self.sess = v1.Session()
            restore(self.sess, prefix, cfg)
        self.graph.finalize()
        self.input_size, self.labels, self.run = cfg['image_size'], run['label_names'], run

    def run_model(self, images):
        return self.sess.run(self.outputs, {self.images: images})


class FrozenDetector(_Detector):
    def __init__(self, path, info):
        graph_def = v1.GraphDef()
        with open(path, 'rb') as f:
            graph_def.ParseFromString(f.read())
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.import_graph_def(graph_def, name='')
        self.sess = v1.Session(graph=self.graph)
        self.read_info(info)
        self.images = self.graph.get_tensor_by_name(detector.INPUT_NODE + ':0')
        self.outputs = [self.graph.get_tensor_by_name(n + ':0') for n in self.outputs_named]

    def run_model(self, images):
        return self.sess.run(self.outputs, {self.images: images})


class TFLiteDetector(_Detector):
    def __init__(self, path, info):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.read_info(info)
        names = {d['name']: d for d in self.interpreter.get_output_details()}
        self.outputs = [names[next(n for n in names if n.split(':')[0] == node)]
                        for node in self.outputs_named]

    def run_model(self, images):
        if self.input['dtype'] == np.uint8:
            images = np.clip(np.round(images), 0, 255).astype(np.uint8)
        self.interpreter.set_tensor(self.input['index'], images)
        self.interpreter.invoke()
        found = []
        for detail in self.outputs:
            value = self.interpreter.get_tensor(detail['index'])
            scale, zero = detail['quantization']
            if scale and value.dtype != np.int32:
                value = (value.astype(np.float32) - zero) * scale
            found.append(value)
        return found


class ONNXDetector(_Detector):
    def __init__(self, path, info):
        import onnxruntime
        self.session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        self.read_info(info)

    def run_model(self, images):
        return self.session.run([n + ':0' for n in self.outputs_named],
                                {detector.INPUT_NODE + ':0': images})


def frozen_info(path):
    """The .json freeze_graph.py wrote beside a detector's .pb (TFLite and ONNX share it), or
    None when there is none or it is not a detector's."""
    stem = os.path.splitext(path)[0].removesuffix('_int8')
    try:
        with open(stem + '.json') as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get('task') == 'detect' else None


def _has_detector_outputs(path):
    """Whether a frozen file gives a detector's outputs (with its suppression or without)."""
    try:
        if path.endswith('.pb'):
            graph_def = v1.GraphDef()
            with open(path, 'rb') as f:
                graph_def.ParseFromString(f.read())
            names = {node.name for node in graph_def.node}
        elif path.endswith('.tflite'):
            from ai_edge_litert.interpreter import Interpreter
            names = {d['name'].split(':')[0]
                     for d in Interpreter(model_path=path).get_output_details()}
        else:
            import onnx
            names = {o.name.split(':')[0] for o in onnx.load(path, load_external_data=False)
                     .graph.output}
    except Exception:  # noqa: unreadable here: the classifier's loader names what is wrong
        return False
    return set(detector.OUTPUT_NODES) <= names or set(detector.CANDIDATE_NODES) <= names


def load(path, overrides=None):
    """A detector from a checkpoint (prefix or run folder) or a frozen .pb, .tflite or .onnx;
    None when `path` is not a detector's."""
    if path.endswith(('.pb', '.tflite', '.onnx')):
        info = frozen_info(path)
        if info is None:
            if _has_detector_outputs(path):
                raise ModelError("%s: a detector frozen by freeze_graph.py, without the .json "
                                 "written beside it (its input size and class names): copy "
                                 "that file beside it" % path)
            return None
        kind = {'.pb': FrozenDetector, '.tflite': TFLiteDetector, '.onnx': ONNXDetector}
        return kind[os.path.splitext(path)[1]](path, info)
    prefix = reading.checkpoint_prefix(path)
    run = run_files.read_run_config(prefix)
    if is_detector(run):
        return CheckpointDetector(prefix, run, overrides)
    if not run and PREDICTIONS in reading.open_checkpoint(prefix)[1]:
        raise ModelError('%s: a detector\'s checkpoint without the config.json of its run (its '
                         'anchors and classes): copy that file beside it' % prefix)
    return None


def detect_split(model, split, category_ids, images=None):
    """(COCO-format detections in the photos' pixels, indices of the photos scored, images/s,
    [milliseconds of each call]) of `model` on a Boxes split, photo by photo (letterboxed to
    its input size); photos that do not decode are left out (skipped_images())."""
    import time
    from tqdm import tqdm
    found, scored, times = [], [], []
    indices = range(split.num_images) if images is None else images
    for index in tqdm(indices, desc='detecting', unit='photo', leave=False,
                      disable=len(indices) < 200):
        image, ok = pipeline.evaluation_example(split, index, model.input_size)
        if not ok:
            continue
        start = time.perf_counter()
        boxes, scores, classes, count = model.detect(image)
        times.append(time.perf_counter() - start)
        count = int(np.asarray(count).reshape(()))
        found += detector.to_photo(np.asarray(boxes).reshape(-1, 4)[:count],
                                   np.asarray(scores).reshape(-1)[:count],
                                   np.asarray(classes).reshape(-1)[:count], index, split,
                                   model.input_size, category_ids)
        scored.append(index)
    # The first call sets up (allocations, graph rewrites): not counted as speed.
    timed = times[1:] or times
    rate = len(timed) / sum(timed) if timed and sum(timed) else None
    return found, scored, rate, [1000 * t for t in timed]
