"""A trained checkpoint frozen for devices, as the classifier or as a detector's backbone (its
feature maps): the GraphDef, its metadata, TFLite float32 and int8 (calibrated on the run's own
training images), ONNX. freeze_graph.py writes them."""
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib

import config
import data_utils
from datasets import factory
from datasets import sources
from deployment import models
from pipelines import streamed
import mobilenet
from preflight import errors
from tasks import classifier
from training import model

v1 = tf.compat.v1
tf.get_logger().setLevel('ERROR')


INPUT_NODE = classifier.INPUT_NODE

# Ops a frozen inference graph may hold; anything else (variables, training ops) is a bug.
INFERENCE_OPS = {'Placeholder', 'Const', 'Conv2D', 'DepthwiseConv2dNative', 'BiasAdd', 'Relu6',
                 'AvgPool', 'Mean', 'Squeeze', 'Reshape', 'Softmax', 'Pad', 'Identity'}


def output_nodes(backbone=None):
    """The frozen graph's outputs: the classifier's probabilities and logits, or the backbone's
    feature maps, each named as its end point."""
    return list(backbone[0]) if backbone else [classifier.OUTPUT_NODE, classifier.LOGITS_NODE]


def backbone_graph(cfg, end_points, height, width):
    """input placeholder [N, height, width, 3] (None: any size) -> preprocessing -> the base:
    (input, [feature map of each end point, its node named as the end point])."""
    images = v1.placeholder(tf.float32, [None, height, width, 3], name=classifier.INPUT_NODE)
    maps = model.build_features(images, cfg, end_points)
    return images, [tf.identity(feature, name=name) for feature, name in zip(maps, end_points)]


def freeze(prefix, cfg, num_classes, backbone=None):
    """A frozen, batch-norm-folded GraphDef of the checkpoint: the classifier, or with
    `backbone` ((end points), height, width) the base's feature maps."""
    with tf.Graph().as_default() as graph, v1.Session() as sess:
        if backbone:
            backbone_graph(cfg, *backbone)
        else:
            classifier.inference_graph(cfg, num_classes)
        models.restore_for_inference(sess, prefix, cfg)
        outputs = output_nodes(backbone)
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    # toco_compatible: no FusedPadConv2D/FusedResizeAndPadConv2D, which other runtimes lack.
    frozen = optimize_for_inference_lib.optimize_for_inference(
        frozen, [classifier.INPUT_NODE], outputs, tf.float32.as_datatype_enum, toco_compatible=True)
    leftover = sorted({node.op for node in frozen.node} - INFERENCE_OPS)
    if leftover:
        raise AssertionError('frozen graph still holds %s' % ', '.join(leftover))
    return frozen


def backbone_metadata(cfg, backbone, prefix):
    """What a backbone's .json holds: input, and each output's stride and channels."""
    end_points, height, width = backbone
    strides = mobilenet.end_point_strides(mobilenet.STEMS[cfg['stem']])
    channels = mobilenet.end_point_depths(cfg['width'], cfg['min_depth'])
    # OpenCV's importer drops Identity nodes: it reaches a map by the layer that makes it.
    outputs = [dict(name=name, layer='MobilenetV1/%s/Relu6' % name, stride=strides[name],
                    channels=channels[name],
                    shape=[None if height is None else -(-height // strides[name]),
                           None if width is None else -(-width // strides[name]), channels[name]])
               for name in end_points]
    return dict(input=classifier.INPUT_NODE, outputs=outputs, input_size=[height, width],
                input_layout='NHWC', input_channels='RGB', input_range=[0, 255],
                preprocessing=preprocessing(cfg),
                architecture={k: cfg[k] for k in config.ARCHITECTURE_KEYS if k != 'image_size'},
                checkpoint=prefix)


def preprocessing(cfg):
    scale_offset = {'cifar': dict(mean=list(data_utils.CIFAR10_MEAN), std=list(data_utils.CIFAR10_STD)),
                    'inception': dict(mean=[127.5] * 3, std=[127.5] * 3)}[cfg['normalization']]
    return dict(in_graph=True, mode=cfg['normalization'], formula='(pixel - mean) / std',
                **scale_offset)


def metadata(cfg, num_classes, labels, prefix):
    return dict(
        input=classifier.INPUT_NODE, output=classifier.OUTPUT_NODE, logits=classifier.LOGITS_NODE,
        input_size=cfg['image_size'], input_layout='NHWC', input_channels='RGB',
        input_range=[0, 255], central_fraction=cfg['central_fraction'], num_classes=num_classes,
        labels=labels,
        preprocessing=preprocessing(cfg),
        architecture={k: cfg[k] for k in config.ARCHITECTURE_KEYS}, checkpoint=prefix)


# The op kinds of a detector's decoding and suppression (and of its input normalisation), kept
# in float32 in its int8 model: pixel coordinates, exponentials and scores near 0 lose too much
# in 8 bits (boxes inverted, every score under the threshold: mAP 0 on the raccoon record).
FLOAT_TAIL_OPS = ['LOGISTIC', 'EXP', 'TOPK_V2', 'GATHER', 'NON_MAX_SUPPRESSION_V5', 'MUL', 'ADD',
                  'SUB', 'MINIMUM', 'MAXIMUM', 'CONCATENATION', 'PACK', 'STRIDED_SLICE',
                  'RESHAPE', 'PAD', 'ARG_MAX', 'REDUCE_MAX', 'CAST', 'SLICE']


def to_tflite(graph_def, kind, calibration_images=None, outputs=(classifier.OUTPUT_NODE,),
              float_tail=False):
    """TFLite bytes from the frozen graph: float32, or int8 calibrated on images: full-integer
    (uint8 pixels in and out); with `float_tail` (a detector), its convolutions in int8 and
    FLOAT_TAIL_OPS in float32, float32 in and out."""
    with tf.Graph().as_default() as graph:
        v1.import_graph_def(graph_def, name='')
        with v1.Session(graph=graph) as sess:
            converter = v1.lite.TFLiteConverter.from_session(
                sess, [graph.get_tensor_by_name(classifier.INPUT_NODE + ':0')],
                [graph.get_tensor_by_name(name + ':0') for name in outputs])

            def representative_dataset():
                for image in calibration_images:
                    yield [image[None].astype(np.float32)]
            try:
                if kind == 'int8' and float_tail:
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    converter.representative_dataset = representative_dataset
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                           tf.lite.OpsSet.TFLITE_BUILTINS]
                    # Selective quantization: the debugger's way to keep op kinds in float.
                    debugger = tf.lite.experimental.QuantizationDebugger(
                        converter=converter, debug_dataset=representative_dataset,
                        debug_options=tf.lite.experimental.QuantizationDebugOptions(
                            denylisted_ops=FLOAT_TAIL_OPS, fully_quantize=False))
                    return debugger.get_nondebug_quantized_model()
                if kind == 'int8':
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    converter.representative_dataset = representative_dataset
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                    # Pixels 0..255 are exactly uint8 with scale 1: no rounding at the input.
                    converter.inference_input_type = tf.uint8
                    converter.inference_output_type = tf.uint8
                return converter.convert()
            except Exception as e:  # the converter raises its own ConverterError, not exported
                message = ' '.join(str(e).split())[:300]
                raise errors.ModelError('TFLite %s conversion failed: %s' % (kind, message)) from e


def to_onnx(graph_def, outputs):
    """ONNX bytes of the frozen graph (tf2onnx, its default opset), NHWC as the graph is: the
    input is input:0, each output its node's name with :0."""
    import logging
    import tf2onnx
    tf2onnx.logging.set_level(logging.ERROR)
    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=[classifier.INPUT_NODE + ':0'],
            output_names=[name + ':0' for name in outputs])
    except Exception as e:  # tf2onnx raises what its handlers happen to
        raise errors.ModelError('ONNX conversion failed: %s' % ' '.join(str(e).split())[:300]) from e
    return proto.SerializeToString()


def calibration_set(data, count, cfg):
    """`count` images of the training split of `data` (run_files.data_settings), drawn at
    random, as evaluation sees them at the model's input size."""
    data_dir = data['data_dir']
    splits = factory.load(data['dataset'], data_dir, data['val_size'], data['test_size'],
                          data['seed'], data['cifar_archive'] or None)
    train = splits['train']
    if count > train.num_images:
        raise errors.DataError('--calibration_images %d: only %d training images in %s'
                               % (count, train.num_images, data_dir))
    if isinstance(train, sources.Arrays):
        chosen = train.images[np.random.RandomState(0).choice(len(train.images), count,
                                                              replace=False)]
        return models.resize_images(chosen, cfg['image_size'])
    try:
        return streamed.sample_views(train, len(splits['label_names']), count, cfg['image_size'],
                                     cfg['central_fraction'])
    except errors.DataError as e:
        raise errors.DataError('--calibration_images %d: %s in %s' % (count, e, data_dir)) from e
