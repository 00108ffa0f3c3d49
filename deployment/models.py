"""A trained model as a function from raw RGB pixels to class probabilities.

One interface over the four forms a model takes here, so that evaluate.py and
predict.py treat them alike and the tests can compare them:

    checkpoint   a train.py checkpoint (prefix or folder), rebuilt for inference
    .pb          a frozen GraphDef from freeze_graph.py
    .tflite      float32 or full-integer TFLite from freeze_graph.py
    opencv:PATH  a frozen .pb run by OpenCV's dnn module

Each takes float or uint8 NHWC images in 0..255 at the model's input size and
returns float32 probabilities [N, num_classes]; `input_size`, `labels` (None
if unknown: see label_names) and `central_fraction` (of a photo's sides the
model was scored on: pipelines/streamed.py's eval_view) come from the metadata saved
with the model.
"""
import json
import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import tensorflow as tf

from checkpoints import reading
from checkpoints import run_files
import config
from pipelines import streamed
from preflight import errors
from preflight.errors import ModelError
from tasks import classifier
from training import checks

v1 = tf.compat.v1


def restore_for_inference(sess, prefix, cfg):
    """Restores the model variables, with a message that says what to pass on a mismatch."""
    reader, shapes = reading.open_checkpoint(prefix)
    reading.assign_from_checkpoint(sess, prefix, reader, model_variables(prefix, cfg, shapes))


def model_variables(prefix, cfg, shapes):
    """{checkpoint name: variable} of the model built in this graph; ModelError on a mismatch."""
    matched, mismatched = reading.match_variables(v1.global_variables(scope='MobilenetV1/'),
                                                      shapes)
    if mismatched:
        raise ModelError('%s: %s; pass the --width and --min_depth it was trained with '
                         '(now --width %s --min_depth %s)'
                         % (prefix, mismatched[0], cfg['width'], cfg['min_depth']))
    return matched


def checkpoint_num_classes(prefix):
    _, shapes = reading.open_checkpoint(prefix)
    if classifier.LOGITS_BIASES not in shapes:
        raise ModelError('%s: has no %s; is it a MobilenetV1 classifier checkpoint?'
                         % (prefix, classifier.LOGITS_BIASES))
    return shapes[classifier.LOGITS_BIASES][0]


def resolve_checkpoint_config(prefix, overrides=None):
    """Architecture of a checkpoint: its saved config.json, then explicit overrides, then defaults."""
    saved = run_files.read_run_config(prefix)
    cfg = {k: saved.get(k, config.DEFAULTS[k]) for k in config.ARCHITECTURE_KEYS}
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg.update(dropout_keep_prob=1.0, weight_decay=0.0, regularize_depthwise=False, init_stddev=0.0,
               batch_norm_decay=saved.get('batch_norm_decay', config.DEFAULTS['batch_norm_decay']),
               batch_norm_epsilon=saved.get('batch_norm_epsilon',
                                            config.DEFAULTS['batch_norm_epsilon']))
    try:
        checks.check_architecture(cfg)
    except errors.UsageError as e:
        raise ModelError('%s: %s' % (prefix, e)) from e
    # The view of a photo the model was scored on; a checkpoint with no config.json beside it at
    # a size other than 32 is taken for a published ImageNet one, seen as slim's evaluation does.
    cfg['central_fraction'] = streamed.central_fraction(
        saved.get('dataset', 'cifar10' if saved else 'tfrecord'), cfg['image_size'])
    labels = saved.get('label_names')
    return cfg, labels


class CheckpointModel:
    def __init__(self, path, overrides=None):
        prefix = reading.checkpoint_prefix(path)
        num_classes = checkpoint_num_classes(prefix)
        cfg, labels = resolve_checkpoint_config(prefix, overrides)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images, self.probs = classifier.inference_graph(cfg, num_classes)
            self.sess = v1.Session()
            restore_for_inference(self.sess, prefix, cfg)
        self.graph.finalize()
        self.input_size = cfg['image_size']
        self.central_fraction = cfg['central_fraction']
        self.labels = labels

    def predict(self, images):
        return self.sess.run(self.probs, {self.images: np.asarray(images, np.float32)})


def read_metadata(model_path):
    """The JSON written beside a frozen model by freeze_graph.py (same stem), or {}."""
    stem = os.path.splitext(model_path)[0]
    if stem.endswith('_int8'):
        stem = stem[:-len('_int8')]
    if not os.path.exists(stem + '.json'):
        return {}
    try:
        with open(stem + '.json') as f:
            metadata = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError('%s.json: cannot read (%s)' % (stem, e)) from e
    if not isinstance(metadata, dict):
        raise ModelError('%s.json: holds a JSON %s, not the object freeze_graph.py writes'
                         % (stem, type(metadata).__name__))
    labels = metadata.get('labels')
    if labels is not None and not (isinstance(labels, list) and all(isinstance(n, str)
                                                                    for n in labels)):
        raise ModelError('%s.json: labels is %s, not a list of class names'
                         % (stem, json.dumps(labels)))
    fraction = metadata.get('central_fraction', 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not 0 < fraction <= 1:
        raise ModelError('%s.json: central_fraction is %s, not a number in (0, 1]'
                         % (stem, json.dumps(fraction)))
    return metadata


def label_names(labels, num_classes):
    """The class names a model was saved with, or class_0.. when they are missing or do not fit."""
    if labels and len(labels) == num_classes:
        return list(labels)
    return ['class_%d' % i for i in range(num_classes)]


class FrozenGraphModel:
    def __init__(self, path):
        graph_def = v1.GraphDef()
        try:
            with open(path, 'rb') as f:
                graph_def.ParseFromString(f.read())
        except OSError as e:
            raise ModelError('%s: cannot read (%s)' % (path, e.strerror)) from e
        except Exception as e:  # protobuf's DecodeError and friends
            raise ModelError('%s: not a frozen GraphDef (%s)' % (path, e)) from e
        self.graph = tf.Graph()
        with self.graph.as_default():
            try:
                v1.import_graph_def(graph_def, name='')
                self.images = self.graph.get_tensor_by_name(classifier.INPUT_NODE + ':0')
                self.probs = self.graph.get_tensor_by_name(classifier.OUTPUT_NODE + ':0')
            except (KeyError, ValueError) as e:
                raise ModelError('%s: not a frozen MobilenetV1 of freeze_graph.py (%s)' % (path, e)) from e
        self.sess = v1.Session(graph=self.graph)
        self.input_size = self.images.shape[1]
        metadata = read_metadata(path)
        self.labels = metadata.get('labels')
        self.central_fraction = metadata.get('central_fraction', 1.0)

    def predict(self, images):
        return self.sess.run(self.probs, {self.images: np.asarray(images, np.float32)})


class TFLiteModel:
    # Bigger batches gain nothing on the interpreter and cost memory.
    BATCH_SIZE = 100

    def __init__(self, path):
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=os.cpu_count())
        except (ValueError, RuntimeError) as e:
            raise ModelError('%s: not a TFLite model (%s)' % (path, e)) from e
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        shape = inputs[0]['shape'].tolist() if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or \
                len(outputs) != 1 or len(outputs[0]['shape']) != 2:
            raise ModelError('%s: takes %s and gives %s; expected one NHWC RGB image batch '
                             '[N, S, S, 3] in and [N, classes] out, as freeze_graph.py writes'
                             % (path, ', '.join(str(i['shape'].tolist()) for i in inputs),
                                ', '.join(str(o['shape'].tolist()) for o in outputs)))
        self.input, self.output = inputs[0], outputs[0]
        self.input_size = int(self.input['shape'][1])
        metadata = read_metadata(path)
        self.labels = metadata.get('labels')
        self.central_fraction = metadata.get('central_fraction', 1.0)
        self._batch = None

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input['index'], [batch, self.input_size,
                                                                       self.input_size, 3])
            self.interpreter.allocate_tensors()
            self._batch = batch

    def predict(self, images):
        images = np.asarray(images)
        outputs = []
        for start in range(0, len(images), self.BATCH_SIZE):
            chunk = images[start:start + self.BATCH_SIZE]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self.input['index'], _quantize(chunk, self.input))
            self.interpreter.invoke()
            outputs.append(_dequantize(self.interpreter.get_tensor(self.output['index']), self.output))
        return np.concatenate(outputs)


def _quantize(values, details):
    dtype = details['dtype']
    if dtype == np.float32:
        return values.astype(np.float32)
    scale, zero_point = details['quantization']
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(values, details):
    if details['dtype'] == np.float32:
        return values
    scale, zero_point = details['quantization']
    return (values.astype(np.float32) - zero_point) * scale


class OpenCVModel:
    """A frozen .pb run by cv2.dnn. Given a file path: bytes crashed it beside TensorFlow."""

    def __init__(self, path):
        import cv2
        self.cv2 = cv2
        try:
            self.net = cv2.dnn.readNetFromTensorflow(path)
        except cv2.error as e:
            raise ModelError('%s: OpenCV cannot import it (%s)' % (path, str(e).strip().splitlines()[-1])) from e
        metadata = read_metadata(path)
        self.input_size = metadata.get('input_size', 32)
        self.labels = metadata.get('labels')
        self.central_fraction = metadata.get('central_fraction', 1.0)

    def predict(self, images):
        # NHWC in, as the graph's input; OpenCV wants an NCHW blob and transposes it back itself.
        blob = np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2))
        self.net.setInput(blob)
        return np.asarray(self.net.forward(classifier.OUTPUT_NODE), np.float32).reshape(len(images), -1)


def load_model(path, **overrides):
    """A model from a path: .pb, .tflite, opencv:FILE.pb, else a checkpoint prefix or folder."""
    if path.startswith('opencv:'):
        return OpenCVModel(path[len('opencv:'):])
    if path.endswith('.pb') or path.endswith('.tflite'):
        if not os.path.isfile(path):
            raise ModelError('%s: no such file' % path)
        return FrozenGraphModel(path) if path.endswith('.pb') else TFLiteModel(path)
    return CheckpointModel(path, overrides)


def photo_views(photos, size, fraction):
    """float32 [N, size, size, 3] of uint8 RGB [H, W, 3] arrays of any sizes, each seen as
    evaluation sees an image of the model's data (pipelines/streamed.py's eval_view)."""
    return np.stack([streamed.eval_view(tf.constant(photo, tf.uint8), size, fraction).numpy()
                     for photo in photos])


def resize_images(images, size):
    """uint8/float NHWC images to size x size, bilinear as the training pipeline resizes."""
    images = np.asarray(images)
    if images.shape[1:3] == (size, size):
        return images
    return tf.image.resize(tf.cast(images, tf.float32), [size, size]).numpy()
