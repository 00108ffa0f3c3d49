"""A trained model as a function from raw RGB pixels to class probabilities.

One interface over the five forms a model takes here, so that evaluate.py and
predict.py treat them alike and the tests can compare them:

    checkpoint   a train.py checkpoint (prefix or folder), rebuilt for inference
    .pb          a frozen GraphDef from freeze_graph.py
    .tflite      float32 or full-integer TFLite from freeze_graph.py
    .onnx        the frozen graph as ONNX (freeze_graph.py --onnx), run by ONNX Runtime
    opencv:PATH  a frozen .pb run by OpenCV's dnn module

Each takes float or uint8 NHWC images in 0..255 at the model's input size and
returns float32 probabilities [N, num_classes]; `input_size`, `num_classes`
(None if unknown), `labels` (None if unknown: see label_names) and
`central_fraction` (of a photo's sides the model was scored on:
pipelines/streamed.py's eval_view) come from the metadata saved with the model;
`run` is the config.json of a checkpoint's run ({} for other forms).
"""
import json
import os

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import tensorflow as tf

from checkpoints import reading
from checkpoints import run_files
import config
import data_utils
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
    """(architecture of a checkpoint: its saved config.json, then explicit overrides, then
    defaults; the run's config.json itself, {} if it has none)."""
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
    # The view of a photo the model was scored on: an import's says it; a checkpoint with no
    # config.json beside it at a size other than 32 is taken for a published ImageNet one, seen
    # as slim's evaluation does.
    cfg['central_fraction'] = saved.get('central_fraction') or streamed.central_fraction(
        saved.get('dataset', 'cifar10' if saved else 'tfrecord'), cfg['image_size'])
    return cfg, saved


class CheckpointModel:
    def __init__(self, path, overrides=None):
        prefix = reading.checkpoint_prefix(path)
        num_classes = checkpoint_num_classes(prefix)
        cfg, self.run = resolve_checkpoint_config(prefix, overrides)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images, self.probs = classifier.inference_graph(cfg, num_classes)
            self.sess = v1.Session()
            restore_for_inference(self.sess, prefix, cfg)
        self.graph.finalize()
        self.input_size = cfg['image_size']
        self.central_fraction = cfg['central_fraction']
        self.labels = self.run.get('label_names')
        self.num_classes = num_classes

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


def _view(metadata, input_size):
    """The central fraction a frozen model sees of a photo: its .json's; without one, a model
    taken for a published ImageNet one sees slim's evaluation view, as a checkpoint without
    its config.json does (all of it at 32x32)."""
    return metadata.get('central_fraction', streamed.central_fraction('tfrecord', input_size))


def label_names(model, labels, num_classes, source='the files freeze_graph.py wrote beside it'):
    """The class names `model` (its path) was saved with, or class_0.. when it has none;
    ModelError when they are not one a class, pointing to `source`, where they came from."""
    if not labels:
        return ['class_%d' % i for i in range(num_classes)]
    if len(labels) != num_classes:
        raise ModelError('%s: its metadata names %d classes (%s), the model has %d; check %s' % (
            model, len(labels), ', '.join(labels[:3] + ['...'] if len(labels) > 3 else labels),
            num_classes, source))
    return list(labels)


def read_labels(path, num_classes):
    """(class names of a labels file, one a line, for a model of num_classes classes; a note or
    None). ImageNet's two conventions meet: 1001 names (a 'background' first line, as TF-Slim's
    models) for a 1000-class model (Keras's) lose the first, 1000 names for a 1001-class model
    get 'background' first, and it is said; any other count is a UsageError naming the file
    and both counts."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            names = [line.strip() for line in f.read().splitlines()]
    except OSError as e:
        raise errors.UsageError('--labels %s: cannot read (%s)' % (path, e.strerror)) from e
    except UnicodeDecodeError as e:
        raise errors.UsageError('--labels %s: not UTF-8 text (%s)' % (path, e.reason)) from e
    while names and not names[-1]:
        names.pop()
    if '' in names:
        raise errors.UsageError('--labels %s: line %d is empty; one class name a line'
                                % (path, names.index('') + 1))
    if len(names) == num_classes:
        return names, None
    if {len(names), num_classes} != {1000, 1001}:
        raise errors.UsageError('--labels %s: %d names, one a line, for a model of %d classes'
                                % (path, len(names), num_classes))
    if len(names) == num_classes + 1:
        return names[1:], ('--labels %s: %d names for %d classes; its first, %r, dropped (the '
                           'background class of 1001-class models)' % (path, len(names),
                                                                        num_classes, names[0]))
    return ['background'] + names, (
        '--labels %s: %d names for %d classes; class 0 is the background class of 1001-class '
        'models' % (path, len(names), num_classes))


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
        self.num_classes = self.probs.shape[-1]
        self.run = {}
        metadata = read_metadata(path)
        self.labels = metadata.get('labels')
        self.central_fraction = _view(metadata, self.input_size)

    def predict(self, images):
        return self.sess.run(self.probs, {self.images: np.asarray(images, np.float32)})


class TFLiteModel:
    # Bigger batches gain nothing on the interpreter and cost memory.
    BATCH_SIZE = 100

    def __init__(self, path, normalization=None):
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
        self.num_classes = int(self.output['shape'][1])
        self.run = {}
        metadata = read_metadata(path)
        self.labels = metadata.get('labels')
        self.central_fraction = _view(metadata, self.input_size)
        self._mapping = _pixel_mapping(path, self.input, metadata, normalization)
        # A batch dimension fixed at 1 does not resize: such a model sees one image at a time.
        signature = self.input.get('shape_signature', self.input['shape'])
        self._per_call = 1 if int(signature[0]) == 1 else self.BATCH_SIZE
        self._batch = None

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input['index'], [batch, self.input_size,
                                                                       self.input_size, 3])
            self.interpreter.allocate_tensors()
            self._batch = batch

    def predict(self, images):
        images = np.asarray(images, np.float32)
        if self._mapping is not None:  # float input, or uint8 quantized from the mapped values
            scale, offset = self._mapping
            images = images * np.float32(scale) + np.float32(offset)
        outputs = []
        for start in range(0, len(images), self._per_call):
            chunk = images[start:start + self._per_call]
            self._resize(len(chunk))
            if self._mapping is None and self.input['dtype'] == np.uint8:
                # The pixels themselves, as TFLite image models take them.
                tensor = np.clip(np.round(chunk), 0, 255).astype(np.uint8)
            else:
                tensor = _quantize(chunk, self.input)
            self.interpreter.set_tensor(self.input['index'], tensor)
            self.interpreter.invoke()
            outputs.append(_dequantize(self.interpreter.get_tensor(self.output['index']), self.output))
        return np.concatenate(outputs)


def _pixel_mapping(path, details, metadata, normalization):
    """(scale, offset) that maps pixels 0..255 to a TFLite model's float input, or None where it
    takes the pixels themselves: a uint8 input (TFLite's convention for images: its quantization
    says what the pixels mean) or freeze_graph.py's float models (their .json: normalization in
    the graph). Else --normalization, else the NormalizationOptions of the model's own TFLite
    metadata; ModelError when nothing says it."""
    if metadata.get('preprocessing', {}).get('in_graph'):
        return None
    if details['dtype'] == np.uint8 and normalization is None:
        return None
    if normalization is not None:
        return data_utils.normalization(normalization)
    embedded = tflite_normalization(path)
    if embedded is not None:
        mean, std = (np.asarray(v, np.float32) for v in embedded)
        return 1.0 / std, -mean / std
    raise ModelError('%s: takes %s input, and neither the .json freeze_graph.py writes beside its '
                     'models (put it back beside a model of ours) nor TFLite metadata says how '
                     'pixels map to it; pass --normalization inception (pixels to [-1, 1], as '
                     'published ImageNet models) or cifar'
                     % (path, np.dtype(details['dtype']).name))


def tflite_normalization(path):
    """(mean, std) of the NormalizationOptions of a TFLite model's metadata (TFLite Support's
    ModelMetadata: the first input of the first subgraph), or None where it has none."""
    from ai_edge_litert import schema_py_generated as schema
    import flatbuffers
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == b'TFLITE_METADATA':
            buffer = bytes(model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy())
            break
    else:
        return None

    def table(parent, slot, index=None):
        # The table in field `slot` of `parent` (the index-th of a vector of tables), or None.
        offset = parent.Offset(4 + 2 * slot)
        if not offset:
            return None
        if index is None:
            return flatbuffers.table.Table(parent.Bytes, parent.Indirect(parent.Pos + offset))
        if index >= parent.VectorLen(offset):
            return None
        return flatbuffers.table.Table(parent.Bytes, parent.Indirect(parent.Vector(offset)
                                                                     + 4 * index))

    def floats(parent, slot):
        offset = parent.Offset(4 + 2 * slot)
        start = parent.Vector(offset) if offset else 0
        return [parent.Get(flatbuffers.number_types.Float32Flags, start + 4 * i)
                for i in range(parent.VectorLen(offset) if offset else 0)]

    try:
        root = flatbuffers.table.Table(buffer, flatbuffers.encode.Get(
            flatbuffers.packer.uoffset, buffer, 0))
        # ModelMetadata.subgraph_metadata (slot 3), SubGraphMetadata.input_tensor_metadata
        # (slot 2), TensorMetadata.process_units (slot 4); ProcessUnit.options_type (slot 0,
        # NormalizationOptions = 1) and options (slot 1): mean (slot 0), std (slot 1).
        subgraph = table(root, 3, 0)
        tensor = subgraph and table(subgraph, 2, 0)
        for index in range(8):
            unit = tensor and table(tensor, 4, index)
            if unit is None:
                return None
            kind = unit.Offset(4)
            if kind and unit.Get(flatbuffers.number_types.Uint8Flags, unit.Pos + kind) == 1:
                options = table(unit, 1)
                mean, std = floats(options, 0), floats(options, 1)
                return (mean, std) if mean and std and all(std) else None
    except Exception:  # a buffer that is not TFLite Support's metadata
        return None
    return None


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
        metadata = read_metadata(path)
        if 'outputs' in metadata:
            raise ModelError('%s: a backbone of freeze_graph.py --backbone (feature maps), not a '
                             'classifier' % path)
        try:
            self.net = cv2.dnn.readNetFromTensorflow(path)
        except cv2.error as e:
            raise ModelError('%s: OpenCV cannot import it (%s)' % (path, str(e).strip().splitlines()[-1])) from e
        # The graph's own input size: a .pb without its .json says it too.
        self.input_size = FrozenGraphModel(path).input_size
        stride = 32 if metadata.get('architecture', {}).get('stem', 'imagenet') == 'imagenet' \
            else 16
        if self.input_size <= stride:
            # OpenCV 5.0's depthwise convolution is wrong on a 1-pixel map (seen: off by up to 6).
            raise ModelError('%s: takes %dx%d images, a 1-pixel map at Conv2d_13, which OpenCV '
                             "computes wrong; run the .pb itself, or freeze at a larger "
                             '--image_size' % (path, self.input_size, self.input_size))
        self.num_classes = metadata.get('num_classes')
        self.run = {}
        self.labels = metadata.get('labels')
        self.central_fraction = _view(metadata, self.input_size)

    def predict(self, images):
        # NHWC in, as the graph's input; OpenCV wants an NCHW blob and transposes it back itself.
        blob = np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2))
        self.net.setInput(blob)
        probs = np.asarray(self.net.forward(classifier.OUTPUT_NODE), np.float32).reshape(
            len(images), -1)
        if not np.all(np.isfinite(probs)):
            raise ModelError('OpenCV gave probabilities that are not numbers for this graph; run '
                             'the .pb itself')
        return probs


class ONNXModel:
    """A .onnx of freeze_graph.py --onnx run by ONNX Runtime: the frozen graph's NHWC pixels in
    (input:0), its probabilities out."""

    def __init__(self, path):
        import onnxruntime
        try:
            self.session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime's own exception types are not exported alike
            raise ModelError('%s: ONNX Runtime cannot load it (%s)' % (
                path, ' '.join(str(e).split())[:200])) from e
        names = [o.name for o in self.session.get_outputs()]
        inputs = self.session.get_inputs()
        if classifier.OUTPUT_NODE + ':0' not in names or len(inputs) != 1:
            raise ModelError('%s: gives %s; not a classifier of freeze_graph.py --onnx (its '
                             'output is %s:0)' % (path, ', '.join(names), classifier.OUTPUT_NODE))
        self.input_name = inputs[0].name
        metadata = read_metadata(path)
        size = inputs[0].shape[1]
        self.input_size = size if isinstance(size, int) else metadata.get('input_size', 224)
        self.num_classes = metadata.get('num_classes')
        self.run = {}
        self.labels = metadata.get('labels')
        self.central_fraction = _view(metadata, self.input_size)

    def predict(self, images):
        return self.session.run([classifier.OUTPUT_NODE + ':0'], {
            self.input_name: np.asarray(images, np.float32)})[0]


def load_model(path, **overrides):
    """A model from a path: .pb, .tflite, .onnx, opencv:FILE.pb, else a checkpoint prefix or
    folder."""
    if path.startswith('opencv:'):
        return OpenCVModel(path[len('opencv:'):])
    if path.endswith(('.pb', '.tflite', '.onnx')):
        if not os.path.isfile(path):
            raise ModelError('%s: no such file' % path)
        if path.endswith('.pb'):
            return FrozenGraphModel(path)
        if path.endswith('.onnx'):
            return ONNXModel(path)
        return TFLiteModel(path, overrides.get('normalization'))
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
