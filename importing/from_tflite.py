"""MobileNetV1 weights out of a TFLite file: a classifier, float or quantized (uint8 or int8
weights, per tensor or per channel, dequantized; float16 weights widened), or the backbone of
another network built on it, such as the TF Object Detection API's SSD (base only).

The network is found by its structure, not its tensor names: the first 3x3 convolution of three
input channels, then 13 pairs of a 3x3 depthwise and a 1x1 convolution, each consuming the
last; then, for a classifier, a global pool and a 1x1 convolution (or fully connected layer).
Ops before the first convolution (preprocessing kept in the graph, quantization of the input)
are measured, not read: the input tensor of that convolution for all-black and all-white
pictures gives how pixels map to it, which must be one of --normalization's modes.
"""
import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema

import data_utils
from importing import imported
import mobilenet
from preflight import errors

# Ops between the layers that change no weight: padding (explicit padding), (de)quantization of
# activations, and a ReLU6 a converter left unfused.
PASS_THROUGH = {'PAD', 'QUANTIZE', 'DEQUANTIZE', 'RELU6'}
POOLS = {'AVERAGE_POOL_2D', 'MEAN'}
FLATTEN = {'RESHAPE', 'SQUEEZE'}
LOGITS = {'CONV_2D', 'FULLY_CONNECTED'}
# How far pixels may map from a --normalization mode and still be it: uint8 models of TF-Slim
# take (pixel - 128) / 128 for inception's (pixel - 127.5) / 127.5, 0.4% apart.
MAPPING_TOLERANCE = 0.02


class TFLiteSource:
    """The TFLite file, its ops, and the interpreter that is the reference an import must match."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, 'rb') as f:
                data = f.read()
            self.interpreter = litert.Interpreter(
                model_content=data, experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            signature = self.interpreter.get_input_details()[0]['shape_signature']
            if len(signature) == 4 and min(signature[1:3]) < 1:
                raise errors.ModelError('%s: takes images of any size; export it at a fixed '
                                        'size to import it' % path)
            if len(signature) == 4 and signature[0] != 1:  # one picture at a time here
                self.interpreter.resize_tensor_input(
                    self.interpreter.get_input_details()[0]['index'], [1] + list(signature[1:]))
            self.interpreter.allocate_tensors()
            self.model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(bytearray(data), 0))
        except OSError as e:
            raise errors.ModelError('%s: cannot read (%s)' % (path, e.strerror)) from e
        except (ValueError, RuntimeError) as e:
            raise errors.ModelError('%s: not a TFLite model (%s)' % (path, str(e).strip())) from e
        self.details = {d['index']: d for d in self.interpreter.get_tensor_details()}
        self.ops = self.interpreter._get_ops_details()
        self.producer = {t: op for op in self.ops for t in op['outputs']}
        self.consumers = {}
        for op in self.ops:
            for t in op['inputs']:
                self.consumers.setdefault(t, []).append(op)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]['shape']) != 4 or inputs[0]['shape'][3] != 3:
            raise errors.ModelError('%s: takes %s; a MobileNetV1 takes one NHWC RGB image batch'
                                    % (path, ', '.join(str(i['shape'].tolist()) for i in inputs)))
        self.input = inputs[0]

    def options(self, op):
        return self.model.subgraphs[0].operators[op['index']].builtinOptions

    def shape(self, tensor):
        return self.details[tensor]['shape'].tolist()

    def constant(self, tensor):
        """The float32 value of a weight tensor: dequantized (per tensor or per channel), widened
        from float16 through the DEQUANTIZE op that feeds it."""
        op = self.producer.get(tensor)
        if op is not None and op['op_name'] == 'DEQUANTIZE':
            return self.constant(op['inputs'][0])
        value = self.interpreter.get_tensor(tensor)
        return _dequantize(value, self.details[tensor])

    def next_op(self, tensor, kinds):
        """(the op of `kinds` that consumes `tensor`, through pass-through ops; whether a PAD
        was passed), or (None, False)."""
        frontier, padded = [(tensor, False)], False
        while frontier:
            tensor, padded = frontier.pop(0)
            for op in self.consumers.get(tensor, []):
                if op['op_name'] in kinds and op['inputs'][0] == tensor:
                    return op, padded
                if op['op_name'] in PASS_THROUGH:
                    frontier.append((op['outputs'][0], padded or op['op_name'] == 'PAD'))
        return None, False

    def run(self, tensor_inputs, outputs):
        """[float32 value of each of `outputs` tensors] for one input array."""
        self.interpreter.set_tensor(self.input['index'], tensor_inputs)
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(t), self.details[t]) for t in outputs]


def _dequantize(value, detail):
    if not np.issubdtype(value.dtype, np.integer):
        return value.astype(np.float32)
    params = detail.get('quantization_parameters', {})
    scales, zero_points = params.get('scales', np.zeros(0)), params.get('zero_points', np.zeros(0))
    if not len(scales):
        scale, zero_point = detail['quantization']
        if not scale:
            return value.astype(np.float32)
        scales, zero_points = np.array([scale]), np.array([zero_point])
    axis = params.get('quantized_dimension', 0)
    shape = [1] * value.ndim
    if len(scales) > 1:
        shape[axis] = len(scales)
    return ((value.astype(np.float32) - zero_points.reshape(shape).astype(np.float32))
            * scales.reshape(shape).astype(np.float32))


def _first_layer(source):
    for op in source.ops:
        if op['op_name'] == 'CONV_2D' and len(op['inputs']) > 1:
            shape = source.shape(op['inputs'][1])
            if len(shape) == 4 and shape[1:] == [3, 3, 3]:
                return op
    raise errors.ModelError('%s: has no 3x3 convolution of the three colour channels; not a '
                            'MobileNetV1' % source.path)


def _kernel(source, op):
    """The op's weights in slim's layout: CONV_2D [out, h, w, in] -> [h, w, in, out];
    DEPTHWISE_CONV_2D [1, h, w, channels] -> [h, w, channels, 1]."""
    return source.constant(op['inputs'][1]).transpose(1, 2, 3, 0)


def _bias(source, op, channels):
    if len(op['inputs']) > 2 and op['inputs'][2] >= 0:
        return source.constant(op['inputs'][2])
    return np.zeros(channels, np.float32)


def _base(source):
    """([27 ops of the base in order], whether the first pads explicitly)."""
    first = _first_layer(source)
    ops = [first]
    _, explicit = source.next_op(source.input['index'], {'CONV_2D'})
    names = mobilenet.end_point_names()
    for name in names[1:]:
        kind = 'DEPTHWISE_CONV_2D' if name.endswith('depthwise') else 'CONV_2D'
        op, _ = source.next_op(ops[-1]['outputs'][0], {kind})
        if op is None:
            raise errors.ModelError('%s: no %s follows its layer %s (%d layers found); not a '
                                    'MobileNetV1' % (source.path, kind, names[len(ops) - 1], len(ops)))
        ops.append(op)
    return ops, explicit


def _head(source, last):
    """(logits op, the tensor the model gives after it, whether that is a softmax's) after the
    base, or (None, None, False) when what follows is not MobileNetV1's classifier head (a
    detector's layers)."""
    pool, _ = source.next_op(last['outputs'][0], POOLS)
    shape = None if pool is None else source.shape(pool['outputs'][0])
    if shape is None or (len(shape) == 4 and shape[1:3] != [1, 1]):
        return None, None, False
    tensor = pool['outputs'][0]
    while True:
        op, _ = source.next_op(tensor, LOGITS | FLATTEN)
        if op is None:
            return None, None, False
        if op['op_name'] in LOGITS:
            break
        tensor = op['outputs'][0]
    output, softmax = op['outputs'][0], False
    while True:  # squeeze, softmax: the last tensor of the chain is what the model gives
        following = [o for o in source.consumers.get(output, []) if o['op_name'] in
                     FLATTEN | {'SOFTMAX', 'DEQUANTIZE', 'QUANTIZE'}]
        if not following:
            break
        if following[0]['op_name'] == 'SOFTMAX':
            if softmax or source.options(following[0]).beta != 1:
                return None, None, False  # a temperature, or more than slim's head
            softmax = True
        output = following[0]['outputs'][0]
    # Anything else after the logits (another layer, a sigmoid) is not slim's head.
    if output not in {d['index'] for d in source.interpreter.get_output_details()}:
        return None, None, False
    return op, output, softmax


def _pixels(source, value):
    """The input array for a picture of every pixel `value` (0..255), as the model takes pixels:
    a uint8 input the pixels themselves (TFLite's convention for images), int8 minus 128."""
    shape = source.input['shape'].tolist()
    dtype = source.input['dtype']
    if dtype == np.uint8:
        return np.full(shape, value, np.uint8)
    if dtype == np.int8:
        return np.full(shape, value - 128, np.int8)
    return np.full(shape, value, dtype)


def _normalization(source, first_tensor, embedded, given):
    """(--normalization mode, (scale, offset) from pixels to the input array, or None when the
    model takes pixels) of the model's input; ModelError when the pixels map to neither mode."""
    h, w = (s // 2 for s in source.shape(first_tensor)[1:3])
    black, white = (source.run(_pixels(source, v), [first_tensor])[0][0, h, w] for v in (0, 255))
    scale, offset = (white - black) / 255.0, black
    if np.allclose(scale, 1.0, atol=1e-3) and np.allclose(offset, 0.0, atol=1e-3):
        # A float input that is the network's own: the caller normalizes.
        if given:
            return given, data_utils.normalization(given)
        if embedded is None:
            raise errors.ModelError(
                '%s: takes float input, and neither its graph nor its TFLite metadata says how '
                'pixels map to it; pass --normalization inception (pixels to [-1, 1], as '
                "TF-Slim's and Keras's ImageNet models) or cifar" % source.path)
        mean, std = (np.asarray(v, np.float64) for v in embedded)
        scale, offset = 1.0 / std, -mean / std
        pixels_map = (scale, offset)
    else:
        pixels_map = None
    for mode in ('inception', 'cifar'):
        mode_scale, mode_offset = data_utils.normalization(mode)
        if np.all(np.abs(scale - mode_scale) <= MAPPING_TOLERANCE * np.abs(mode_scale)) and \
                np.all(np.abs(offset - mode_offset) <= MAPPING_TOLERANCE * 4):
            return mode, pixels_map
    raise errors.ModelError(
        '%s: maps pixels to its network as pixel x %s + %s, neither --normalization inception '
        '(x 1/127.5 - 1) nor cifar; not an input this project can reproduce'
        % (source.path, np.round(scale, 5).tolist(), np.round(offset, 4).tolist()))


def read(path, normalization=None, embedded_normalization=None, metadata=None):
    """(Imported, reference): the weights of the TFLite file at `path`, and a function from
    float pixels [N, S, S, 3] to the interpreter's (probabilities or None, Conv2d_13_pointwise
    features). `embedded_normalization` is the (mean, std) of the file's TFLite metadata, or
    None; `metadata` the .json freeze_graph.py wrote beside it ({} if none)."""
    source = TFLiteSource(path)
    ops, explicit = _base(source)
    layers = []
    for op in ops:
        kernel = _kernel(source, op)
        layers.append(imported.Layer(kernel=kernel, bias=_bias(source, op, kernel.shape[-2 if
                                     op['op_name'] == 'DEPTHWISE_CONV_2D' else -1])))
    logits_op, output, softmax = _head(source, ops[-1])
    logits = None
    if logits_op is not None:
        weights = source.constant(logits_op['inputs'][1])
        classes = weights.shape[0]
        kernel = weights.reshape(classes, -1).T.reshape(1, 1, -1, classes)
        logits = (kernel, _bias(source, logits_op, classes))
    height, width = source.input['shape'][1:3].tolist()
    if height != width:
        raise errors.ModelError('%s: takes %dx%d images; only square inputs are imported'
                                % (path, height, width))
    first_input = ops[0]['inputs'][0]
    producer = source.producer.get(first_input)
    if producer is not None and producer['op_name'] == 'PAD':
        first_input = producer['inputs'][0]
    mode, pixels_map = _normalization(source, first_input, embedded_normalization, normalization)
    stride = source.options(ops[0]).strideH
    settings = imported.default_architecture(
        width=imported.width_of(layers[-1].kernel.shape[-1]), image_size=int(height),
        stem='imagenet' if stride == 2 else 'cifar', use_explicit_padding=bool(explicit),
        normalization=mode)
    metadata = metadata or {}
    stored = _stored_dtypes(source, ops + ([logits_op] if logits_op else []))
    result = imported.Imported(
        layers=layers, logits=logits, settings=settings, labels=metadata.get('labels'),
        central_fraction=metadata.get('central_fraction', imported.IMAGENET_CENTRAL_FRACTION),
        source='%s (TFLite, %s weights)' % (path, '/'.join(stored)))
    integers = [d for d in stored if np.issubdtype(np.dtype(d), np.integer)]
    if integers:
        result.quantized = True
        result.notes.append('weights dequantized from %s: the import computes in float what the '
                            'file computes in integers, so it is close to the file, not equal'
                            % '/'.join(integers))
    if logits_op is None:
        result.notes.append('what follows Conv2d_13_pointwise is not a classifier head (%d more '
                            'ops): the base alone is imported' % (len(source.ops) - 1 -
                                                                 ops[-1]['index']))
    imported.check_channels(result, path)

    def reference(pixels):
        probabilities, features = [], []
        for picture in np.asarray(pixels, np.float32):
            if pixels_map is not None:
                array = (picture * pixels_map[0] + pixels_map[1])[None].astype(np.float32)
            elif source.input['dtype'] == np.uint8:
                array = np.clip(np.round(picture), 0, 255).astype(np.uint8)[None]
            elif source.input['dtype'] == np.int8:
                array = (np.clip(np.round(picture), 0, 255) - 128).astype(np.int8)[None]
            else:
                array = picture[None].astype(source.input['dtype'])
            wanted = [ops[-1]['outputs'][0]] + ([output] if output is not None else [])
            values = source.run(array, wanted)
            features.append(values[0][0])
            if output is not None:
                scores = values[1].reshape(-1)
                if not softmax:
                    scores = np.exp(scores - scores.max())
                    scores /= scores.sum()
                probabilities.append(scores)
        probs = np.stack(probabilities) if probabilities else None
        return probs, np.stack(features)
    reference.runtime = "the TFLite interpreter"
    return result, reference


def _stored_dtypes(source, ops):
    """The dtypes the ops' weights are stored in (a float16 weight's, not its DEQUANTIZE's)."""
    dtypes = set()
    for op in ops:
        tensor = op['inputs'][1]
        producer = source.producer.get(tensor)
        if producer is not None and producer['op_name'] == 'DEQUANTIZE':
            tensor = producer['inputs'][0]
        dtypes.add(np.dtype(source.details[tensor]['dtype']).name)
    return sorted(dtypes)
