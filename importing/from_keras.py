"""MobileNetV1 weights out of Keras's `keras.applications.MobileNet`: a saved model (.keras,
.h5) or the weights file Keras caches for weights='imagenet' (mobilenet_1_0_224_tf.h5 and its
widths and sizes; _no_top without the head). Keras names the layers conv1, conv_dw_N, conv_pw_N
(each with its _bn) and conv_preds; their kernels are already in slim's layout, and Keras's
ZeroPadding2D((0, 1), (0, 1)) before each stride-2 layer pads as TensorFlow's SAME does on the
even sizes these models see. Keras's MobileNet preprocesses as inception does (x / 127.5 - 1)
and has 1000 classes, no background class."""
import os
import re

import numpy as np

from importing import imported
from preflight import errors

KERAS_SIZES = (128, 160, 192, 224)


def _load(path):
    """(the Keras model of `path`: a saved model as it is, a weights file into the MobileNet its
    weights imply; a note where the input size was not in the file)."""
    import keras
    try:
        return keras.saving.load_model(path, compile=False), None
    except Exception as saved_model_error:  # weights only, or not Keras at all
        shape = _weights_shape(path)
        if shape is None:
            raise errors.ModelError('%s: neither a Keras model nor MobileNet weights (%s)' % (
                path, str(saved_model_error).strip().splitlines()[0][:200])) from saved_model_error
    alpha, classes = shape
    match = re.search(r'_(\d+)(_tf)?(_no_top)?\.', os.path.basename(path))
    known = bool(match) and int(match.group(1)) in KERAS_SIZES
    size = int(match.group(1)) if known else 224
    try:
        model = keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha,
                                             include_top=bool(classes), weights=None,
                                             classes=classes or 1000)
        model.load_weights(path)
    except Exception as e:  # Keras's own errors, ValueError mostly
        raise errors.ModelError('%s: Keras cannot load it into MobileNet(alpha=%g) (%s)' % (
            path, alpha, str(e).strip().splitlines()[0][:200])) from e
    note = None if known else ('weights alone, their input size not in the file name (as Keras '
                               'names them, mobilenet_1_0_224_tf.h5): recorded as 224')
    return model, note


def _weights_shape(path):
    """(alpha, classes or 0) of a Keras weights file of MobileNet, by the shapes it holds (Keras
    3's .weights.h5 names layers by class, not by name): conv1's kernel [3, 3, 3, 32 x alpha],
    conv_preds's [1, 1, 1024 x alpha, classes]. None if it holds no such weights."""
    import h5py
    kernels = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and item.ndim == 4:
            kernels.append(item.shape)
    try:
        with h5py.File(path, 'r') as f:
            f.visititems(visit)
    except (OSError, ValueError):
        return None
    first = [shape[3] for shape in kernels if shape[:3] == (3, 3, 3)]
    if not first:
        return None
    alpha = first[0] / 32.0
    last = int(1024 * alpha)
    heads = [shape[3] for shape in kernels if shape[:3] == (1, 1, last) and shape[3] != last]
    return alpha, heads[0] if heads else 0


def read(path):
    """(Imported, reference): the weights of a Keras MobileNet and a function from float pixels
    [N, S, S, 3] to Keras's (probabilities or None, conv_pw_13 features)."""
    import keras
    model, note = _load(path)
    names = {layer.name for layer in model.layers}
    wanted = ['conv1'] + ['conv_%s_%d' % (kind, i) for i in range(1, 14) for kind in ('dw', 'pw')]
    missing = [name for name in wanted + [n + '_bn' for n in wanted] if name not in names]
    if missing:
        raise errors.ModelError('%s: has no layer %s; not keras.applications.MobileNet'
                                % (path, missing[0]))
    layers = []
    for name in wanted:
        kernel = model.get_layer(name).get_weights()[0]
        gamma, beta, mean, variance = model.get_layer(name + '_bn').get_weights()
        epsilon = model.get_layer(name + '_bn').epsilon
        # Keras's epsilon into the variance, so that slim's (imported.BATCH_NORM_EPSILON) gives
        # the same scale.
        layers.append(imported.Layer(kernel=kernel, batch_norm=dict(
            gamma=gamma, beta=beta, moving_mean=mean,
            moving_variance=variance + epsilon - imported.BATCH_NORM_EPSILON)))
    logits = None
    if 'conv_preds' in names:
        kernel, bias = model.get_layer('conv_preds').get_weights()
        logits = (kernel, bias)
    position = [layer.name for layer in model.layers].index('conv_pw_13_bn')
    others = [layer.name for layer in model.layers[position + 1:]
              if layer.weights and layer.name != 'conv_preds']
    if others:
        notes_after = ['layers after conv_pw_13 that are not MobileNet\'s head (%s) are not '
                       'imported%s' % (', '.join(others), '' if logits is not None else
                                       ': the base alone is')]
    else:
        notes_after = []
    size = model.input_shape[1]
    notes = ([note] if note else []) + notes_after
    if size is None or model.input_shape[2] != size:
        notes.append('the model takes any input size; recorded as 224, its published size')
        size = 224
    settings = imported.default_architecture(
        width=imported.width_of(layers[-1].kernel.shape[-1]), image_size=int(size))
    result = imported.Imported(layers=layers, logits=logits, settings=settings, notes=notes,
                               source='%s (Keras MobileNet)' % path)
    imported.check_channels(result, path)
    features = keras.Model(model.inputs, [model.get_layer('conv_pw_13_relu').output] +
                           ([model.get_layer('conv_preds').output] if logits is not None else []))

    def reference(pixels):
        outputs = features.predict(np.asarray(pixels, np.float32) / 127.5 - 1.0, verbose=0,
                                   batch_size=len(pixels))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        probs = None
        if logits is not None:
            scores = np.asarray(outputs[1], np.float64).reshape(len(pixels), -1)
            probs = np.exp(scores - scores.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
        return probs, np.asarray(outputs[0])
    reference.runtime = 'Keras'
    return result, reference
