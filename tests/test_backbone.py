"""MobileNetV1 as a detector's backbone: its feature maps in Python and frozen (the .pb, TFLite,
ONNX) alike in every runtime; the classifier at any input size; ONNX models in the programs."""
import json

import cv2
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import freeze_graph
import mobilenet
import predict
from deployment import models
from importing import agreement
from test_faults_surfaces import last_error
from test_import_weights import frozen_tflite
from test_import_weights import random_classifier

v1 = tf.compat.v1


def test_the_feature_extractor_gives_the_end_points_asked_and_builds_no_more():
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [1, 416, 416, 3])
        maps = mobilenet.mobilenet_v1_features(images, is_training=False)
        assert [m.shape.as_list() for m in maps] == [[1, 52, 52, 256], [1, 26, 26, 512],
                                                     [1, 13, 13, 1024]]
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [1, 96, 128, 3])
        first, second = mobilenet.mobilenet_v1_features(
            images, ['Conv2d_3_pointwise', 'Conv2d_1_depthwise'], depth_multiplier=0.5)
        assert first.shape.as_list() == [1, 24, 32, 64] and second.shape.as_list() == [1, 48, 64, 16]
        built = {v.op.name.split('/')[1] for v in v1.global_variables()}
        assert 'Conv2d_3_pointwise' in built and 'Conv2d_4_depthwise' not in built
    with tf.Graph().as_default(), pytest.raises(ValueError, match='Conv2d_13_pointwise'):
        mobilenet.mobilenet_v1_features(v1.placeholder(tf.float32, [1, 64, 64, 3]), ['Conv2d_14'])


@pytest.mark.parametrize('shape', [[2, 416, 416, 3], [2, None, None, 3]])
def test_the_classifier_pools_the_whole_map_at_any_size(shape):
    """slim's fixed 7x7 AvgPool gives a 7x7 grid of logits at 416; the whole map is pooled here."""
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, shape)
        logits, end_points = mobilenet.mobilenet_v1(images, num_classes=5, depth_multiplier=0.25,
                                                    is_training=False)
        sess.run(v1.global_variables_initializer())
        pooled, final = sess.run([end_points['AvgPool_1a'], end_points['Conv2d_13_pointwise']],
                                 {images: agreement.probe_pictures(416, 2)})
        assert sess.run(logits, {images: agreement.probe_pictures(416, 2)}).shape == (2, 5)
    np.testing.assert_allclose(pooled[:, 0, 0], final.mean((1, 2)), rtol=1e-5, atol=1e-6)


def freeze(capsys, argv):
    assert freeze_graph.main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_frozen_backbone_gives_the_same_maps_in_every_runtime(capsys, tmp_path):
    prefix = random_classifier(tmp_path / 'run' / 'model.ckpt')
    pb = tmp_path / 'frozen' / 'backbone.pb'
    line = freeze(capsys, ['--ckpt', prefix, '--backbone', 'detection', '--image_size', '96x128',
                           '--onnx', '--output', str(pb), '--width', '0.25', '--stem', 'imagenet',
                           '--normalization', 'inception'])
    ends = ['Conv2d_5_pointwise', 'Conv2d_11_pointwise', 'Conv2d_13_pointwise']
    assert line['outputs'] == ends
    meta = json.loads((tmp_path / 'frozen' / 'backbone.json').read_text())
    assert [(o['name'], o['stride'], o['shape']) for o in meta['outputs']] == [
        ('Conv2d_5_pointwise', 8, [12, 16, 64]), ('Conv2d_11_pointwise', 16, [6, 8, 128]),
        ('Conv2d_13_pointwise', 32, [3, 4, 256])]
    assert not (tmp_path / 'frozen' / 'backbone_labels.txt').exists()
    pictures = agreement.probe_pictures(128, 2)[:, :96]

    graph_def = v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    with tf.Graph().as_default() as graph:
        v1.import_graph_def(graph_def, name='')
        with v1.Session(graph=graph) as sess:
            expected = sess.run([name + ':0' for name in ends], {'input:0': pictures})
    assert [m.shape[1:] for m in expected] == [(12, 16, 64), (6, 8, 128), (3, 4, 256)]

    net = cv2.dnn.readNetFromTensorflow(str(pb), engine=cv2.dnn.ENGINE_CLASSIC)
    net.setInput(np.ascontiguousarray(pictures.transpose(0, 3, 1, 2)))
    opencv = [m.transpose(0, 2, 3, 1) for m in net.forward([o['layer'] for o in meta['outputs']])]

    lite = Interpreter(model_path=str(tmp_path / 'frozen' / 'backbone.tflite'))
    lite.allocate_tensors()
    by_name = {d['name']: d['index'] for d in lite.get_output_details()}
    litert = [[] for _ in ends]
    for picture in pictures:
        lite.set_tensor(lite.get_input_details()[0]['index'], picture[None])
        lite.invoke()
        for i, name in enumerate(ends):
            litert[i].append(lite.get_tensor(by_name[name])[0])

    session = onnxruntime.InferenceSession(str(tmp_path / 'frozen' / 'backbone.onnx'),
                                           providers=['CPUExecutionProvider'])
    onnx = session.run([name + ':0' for name in ends], {'input:0': pictures})
    for runtime in (opencv, [np.stack(m) for m in litert], onnx):
        for got, want in zip(runtime, expected):
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_a_dynamic_backbone_takes_any_size_in_the_pb(capsys, tmp_path):
    prefix = random_classifier(tmp_path / 'run' / 'model.ckpt')
    pb = tmp_path / 'any.pb'
    line = freeze(capsys, ['--ckpt', prefix, '--backbone', 'Conv2d_11_pointwise,Conv2d_3_pointwise',
                           '--image_size', 'dynamic', '--output', str(pb), '--width', '0.25',
                           '--stem', 'imagenet'])
    assert [f.rsplit('.', 1)[1] for f in line['files']] == ['pb', 'json']
    graph_def = v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    with tf.Graph().as_default() as graph:
        v1.import_graph_def(graph_def, name='')
        with v1.Session(graph=graph) as sess:
            for height, width in ((64, 64), (96, 160)):
                maps = sess.run(['Conv2d_11_pointwise:0', 'Conv2d_3_pointwise:0'],
                                {'input:0': np.zeros((1, height, width, 3), np.float32)})
                assert maps[0].shape == (1, height // 16, width // 16, 128)
                assert maps[1].shape == (1, height // 4, width // 4, 32)


@pytest.mark.parametrize('flags, words', [
    (['--backbone', 'Conv2d_14_pointwise'], 'not an end point of MobileNetV1'),
    (['--backbone', 'detection', '--image_size', '400'],
     'Conv2d_13_pointwise has stride 32; pass sides that are multiples of 32 (e.g. 416)'),
    (['--backbone', 'Conv2d_5_pointwise,Conv2d_5_pointwise'], 'names an end point twice'),
])
def test_bad_backbones_are_one_line(capsys, tmp_path, flags, words):
    prefix = random_classifier(tmp_path / 'run' / 'model.ckpt')
    assert freeze_graph.main(['--ckpt', prefix, '--output', str(tmp_path / 'b.pb'), '--width',
                              '0.25', '--stem', 'imagenet'] + flags) == 2
    assert words in last_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']


@pytest.mark.parametrize('flags, words', [
    (['--image_size', '416x320'], 'the classifier takes square images of a fixed size'),
    (['--backbone', 'detection', '--image_size', 'dynamic', '--tflite', 'float32'],
     'TFLite takes a fixed input size'),
    (['--image_size', '12y4'], "pass a size S, HxW or 'dynamic'"),
    (['--image_size', '4_16'], "pass a size S, HxW or 'dynamic'"),
])
def test_bad_sizes_are_refused_before_work(capsys, flags, words):
    with pytest.raises(SystemExit) as exit_info:
        freeze_graph.parse_args(flags)
    assert exit_info.value.code == 2 and words in capsys.readouterr().err


def test_onnx_classifiers_run_in_the_programs(capsys, tmp_path):
    tflite, prefix = frozen_tflite(tmp_path, capsys)
    pb = tmp_path / 'frozen' / 'mine.pb'
    freeze(capsys, ['--ckpt', prefix, '--output', str(pb), '--onnx', '--tflite', 'none',
                    '--width', '0.25', '--stem', 'imagenet', '--image_size', '64',
                    '--normalization', 'inception'])
    assert not tflite.exists()  # of the earlier freeze, no longer beside it
    shots = agreement.probe_pictures(64, 3)
    onnx = models.load_model(str(tmp_path / 'frozen' / 'mine.onnx'))
    assert onnx.input_size == 64 and onnx.labels == ['class_%d' % i for i in range(5)]
    np.testing.assert_allclose(onnx.predict(shots), models.load_model(str(pb)).predict(shots),
                               atol=2e-6)
    backbone = tmp_path / 'frozen' / 'features.pb'
    freeze(capsys, ['--ckpt', prefix, '--output', str(backbone), '--onnx', '--backbone',
                    'detection', '--width', '0.25', '--stem', 'imagenet', '--image_size', '64'])
    photo = tmp_path / 'photo.png'
    from PIL import Image
    Image.fromarray(shots[0].astype(np.uint8)).save(photo)
    assert predict.main([str(tmp_path / 'frozen' / 'features.onnx'), str(photo)]) == 2
    assert 'not a classifier of freeze_graph.py --onnx' in last_error(capsys)


def test_opencv_is_refused_where_it_would_be_wrong(capsys, tmp_path):
    """OpenCV 5.0 computes a depthwise convolution of a 1-pixel map wrong (off by up to 6), and
    a backbone has no probabilities to give."""
    prefix = random_classifier(tmp_path / 'run' / 'model.ckpt')
    common = ['--ckpt', prefix, '--tflite', 'none', '--width', '0.25', '--stem', 'imagenet']
    freeze(capsys, common + ['--image_size', '32', '--output', str(tmp_path / 'c32.pb')])
    freeze(capsys, common + ['--backbone', 'detection', '--output', str(tmp_path / 'bb.pb')])
    (tmp_path / 'c32.json').unlink()  # the graph itself says its size
    for path, words in (('c32.pb', 'takes 32x32 images, a 1-pixel map at Conv2d_13'),
                        ('bb.pb', 'a backbone of freeze_graph.py --backbone')):
        with pytest.raises(models.ModelError, match=words):
            models.load_model('opencv:%s' % (tmp_path / path))


def test_a_reference_of_another_input_size_sees_the_images_at_its_own(capsys, tmp_path):
    import evaluate
    from conftest import own_images
    root = own_images(tmp_path / 'photos')
    prefix = random_classifier(tmp_path / 'run' / 'model.ckpt', classes=3)
    (tmp_path / 'run' / 'config.json').write_text('{"label_names": ["cat", "dog", "eel"]}')
    common = ['--ckpt', prefix, '--tflite', 'none', '--width', '0.25', '--stem', 'imagenet',
              '--normalization', 'inception']
    freeze(capsys, common + ['--image_size', '64', '--output', str(tmp_path / 'at64.pb'), '--onnx'])
    freeze(capsys, common + ['--image_size', '96', '--output', str(tmp_path / 'at96.pb')])
    assert evaluate.main([str(tmp_path / 'at64.onnx'), '--dataset', 'folder', '--data_dir',
                          str(root), '--reference', str(tmp_path / 'at96.pb')]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['reference']['model'] == str(tmp_path / 'at96.pb')
    assert 0 <= result['reference']['same_class'] <= 1
