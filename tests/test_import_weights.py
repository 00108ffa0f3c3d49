"""import_weights.py: published weights from TF-Slim's archives, TFLite files and Keras become
checkpoints under slim's names that reproduce their source in its own runtime."""
import json
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import freeze_graph
import import_weights
import mobilenet
import predict
from deployment import freezing
from deployment import models
from importing import agreement
from test_faults_surfaces import last_error
from test_own_models import published_checkpoint

v1 = tf.compat.v1


def imported_line(capsys, argv):
    """The JSON line import_weights.py ends with, and its other lines."""
    assert import_weights.main(argv) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1]), '\n'.join(lines[:-1])


def random_classifier(path, width=0.25, size=64, classes=5, seed=0):
    """A checkpoint of MobileNetV1 with random weights and batch-norm statistics far from the
    identity, so that folding batch norm (freeze_graph) changes every weight."""
    rng = np.random.RandomState(seed)
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, [None, size, size, 3])
        mobilenet.mobilenet_v1(images, num_classes=classes, depth_multiplier=width,
                               is_training=False, stddev=None)
        sess.run(v1.global_variables_initializer())
        for var in v1.global_variables():
            name = var.op.name
            if name.endswith(('gamma', 'moving_variance')):
                var.load(rng.uniform(0.5, 1.5, var.shape.as_list()), sess)
            elif name.endswith(('beta', 'moving_mean', 'biases')):
                var.load(rng.normal(0, 0.3, var.shape.as_list()), sess)
        return v1.train.Saver().save(sess, str(path))


def frozen_tflite(tmp_path, capsys, size=64, classes=5):
    """(a float32 .tflite of freeze_graph.py with its .json, the checkpoint it froze)."""
    prefix = random_classifier(tmp_path / 'mine' / 'model.ckpt', size=size, classes=classes)
    pb = tmp_path / 'frozen' / 'mine.pb'
    assert freeze_graph.main(['--ckpt', prefix, '--output', str(pb), '--tflite', 'float32',
                              '--width', '0.25', '--stem', 'imagenet', '--image_size', str(size),
                              '--normalization', 'inception']) == 0, capsys.readouterr().err
    capsys.readouterr()
    return tmp_path / 'frozen' / 'mine.tflite', prefix


def pictures(size, count=4):
    return agreement.probe_pictures(size, count, seed=7)


def test_a_float_tflite_imports_exactly_with_its_names(capsys, tmp_path):
    tflite, _ = frozen_tflite(tmp_path, capsys)
    out = tmp_path / 'imported' / 'mine'
    line, said = imported_line(capsys, [str(tflite), str(out)])
    assert line['width'] == 0.25 and line['image_size'] == 64 and line['num_classes'] == 5
    assert line['check']['top1_agree'] == 8
    assert line['check']['max_probability_difference'] < 1e-4
    settings = json.loads((tmp_path / 'imported' / 'mine.json').read_text())
    assert settings['normalization'] == 'inception' and settings['stem'] == 'imagenet'
    assert 'identity batch norm' in settings['batch_norm']
    # Batch norm folded into the weights comes back as identity batch norm under slim's names.
    reader = tf.train.load_checkpoint(str(out))
    assert np.allclose(reader.get_tensor('MobilenetV1/Conv2d_5_pointwise/BatchNorm/gamma'), 1.0)
    assert np.allclose(reader.get_tensor('MobilenetV1/Conv2d_5_pointwise/BatchNorm/moving_mean'), 0)
    # The checkpoint as evaluate.py and predict.py load it, against the interpreter itself.
    shots = pictures(64)
    mine = models.load_model(str(out))
    assert mine.input_size == 64 and mine.labels == ['class_%d' % i for i in range(5)]
    np.testing.assert_allclose(mine.predict(shots), models.load_model(str(tflite)).predict(shots),
                               atol=1e-4)
    assert not [name for name in os.listdir(tmp_path / 'imported') if name.startswith('.')]


def test_an_int8_tflite_is_dequantized_and_says_how_close(capsys, tmp_path):
    tflite, prefix = frozen_tflite(tmp_path, capsys)
    graph_def = freezing.freeze(prefix, *_frozen_cfg(tmp_path))
    int8 = tmp_path / 'frozen' / 'mine_int8.tflite'
    int8.write_bytes(freezing.to_tflite(graph_def, 'int8', pictures(64, 16)))
    line, said = imported_line(capsys, [str(int8), str(tmp_path / 'q')])
    assert 'weights dequantized from int8' in said
    assert 'Checked against the TFLite interpreter on 8 probe pictures: top-1 agrees on' in said
    assert line['check']['max_probability_difference'] < 0.5
    # Dequantized weights: the import is the float model the int8 one approximates.
    shots = pictures(64)
    imported = models.load_model(str(tmp_path / 'q')).predict(shots)
    float_model = models.load_model(str(tflite)).predict(shots)
    assert np.abs(imported - float_model).max() < 0.2


def _frozen_cfg(tmp_path):
    cfg, _ = models.resolve_checkpoint_config(str(tmp_path / 'mine' / 'model.ckpt'), dict(
        width=0.25, stem='imagenet', image_size=64, normalization='inception'))
    return cfg, 5


def test_a_detector_backbone_imports_the_base_alone(capsys, tmp_path):
    """As the TF Object Detection API's SSD: MobileNetV1's base, then layers of its own."""
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, [1, 96, 96, 3], name='input')
        net, _ = mobilenet.mobilenet_v1_base(images / 127.5 - 1.0, depth_multiplier=0.25,
                                             is_training=False, scope='FeatureExtractor/MobilenetV1')
        extra = v1.get_variable('extra', [1, 1, 256, 64])
        boxes = tf.nn.relu6(tf.nn.conv2d(net, extra, 1, 'SAME'))
        sess.run(v1.global_variables_initializer())
        data = v1.lite.TFLiteConverter.from_session(sess, [images], [boxes]).convert()
    source = tmp_path / 'ssd.tflite'
    source.write_bytes(data)
    line, said = imported_line(capsys, [str(source), str(tmp_path / 'backbone')])
    assert 'not a classifier head' in said and line['num_classes'] is None
    assert line['check']['max_feature_difference'] < 1e-4
    names = tf.train.load_checkpoint(str(tmp_path / 'backbone')).get_variable_to_shape_map()
    assert len(names) == 27 * 5 and not [n for n in names if 'Logits' in n]
    assert names['MobilenetV1/Conv2d_13_pointwise/weights'] == [1, 1, 256, 256]


@pytest.fixture(scope='module')
def keras_files(tmp_path_factory):
    """Keras's MobileNet(alpha=0.25) at 128 with random weights and batch-norm statistics: the
    weights file as Keras caches ImageNet's (legacy HDF5, its name saying alpha and size), and a
    saved model; and the model itself."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format
    folder = tmp_path_factory.mktemp('keras')
    model = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3), weights=None)
    rng = np.random.RandomState(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights([rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.2, shapes[1]),
                               rng.normal(0, 0.2, shapes[2]), rng.uniform(0.5, 2, shapes[3])])
    with h5py.File(folder / 'mobilenet_2_5_128_tf.h5', 'w') as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    model.save(folder / 'mine.keras')
    return folder, model


@pytest.mark.parametrize('name', ['mobilenet_2_5_128_tf.h5', 'mine.keras'])
def test_keras_mobilenet_imports_exactly(capsys, tmp_path, keras_files, name):
    folder, model = keras_files
    line, said = imported_line(capsys, [str(folder / name), str(tmp_path / 'k')])
    assert (line['width'], line['image_size'], line['num_classes']) == (0.25, 128, 1000)
    assert 'Checked against Keras' in said
    shots = pictures(128)
    expected = model.predict(shots / 127.5 - 1.0, verbose=0)
    np.testing.assert_allclose(models.load_model(str(tmp_path / 'k')).predict(shots), expected,
                               atol=1e-4)


def slim_archive(folder, name='mobilenet_v1_0.25_128', width=0.25, size=128):
    """TF-Slim's archive layout: ./NAME.ckpt.{index,data,meta} and more, gzipped."""
    inside = folder / 'inside'
    prefix = published_checkpoint(inside / (name + '.ckpt'), width, size)
    (inside / (name + '_info.txt')).write_text('Model: %s\n' % name)
    archive = folder / (name + '.tgz')
    with tarfile.open(archive, 'w:gz') as tar:
        for entry in sorted(os.listdir(inside)):
            tar.add(inside / entry, arcname='./' + entry)
    return archive, prefix


def test_a_slim_checkpoint_downloads_once_and_reads_offline_after(capsys, tmp_path):
    archive, original = slim_archive(tmp_path)
    cache = tmp_path / 'cache'
    url = 'file://%s/{name}.tgz' % tmp_path
    line, said = imported_line(capsys, ['slim:mobilenet_v1_0.25_128', str(tmp_path / 'a'),
                                        '--cache_dir', str(cache), '--slim_url', url])
    assert (line['width'], line['image_size'], line['num_classes']) == (0.25, 128, 1001)
    assert sorted(os.listdir(cache)) == ['mobilenet_v1_0.25_128']
    # As slim's evaluation restores: the weights' moving averages where kept.
    reader, ours = tf.train.load_checkpoint(original), tf.train.load_checkpoint(str(tmp_path / 'a'))
    name = 'MobilenetV1/Conv2d_3_depthwise/depthwise_weights'
    np.testing.assert_array_equal(ours.get_tensor(name),
                                  reader.get_tensor(name + '/ExponentialMovingAverage'))
    offline = 'http://127.0.0.1:9/{name}.tgz'
    imported_line(capsys, ['slim:mobilenet_v1_0.25_128', str(tmp_path / 'b'), '--cache_dir',
                           str(cache), '--slim_url', offline])
    assert import_weights.main(['slim:mobilenet_v1_0.5_160', str(tmp_path / 'c'), '--cache_dir',
                                str(cache), '--slim_url', offline]) == 2
    error = last_error(capsys)
    assert 'cannot download http://127.0.0.1:9/mobilenet_v1_0.5_160.tgz' in error
    assert 'curl -L -o %s' % (cache / 'mobilenet_v1_0.5_160.tgz') in error
    assert not list(tmp_path.glob('c.*')) and sorted(os.listdir(cache)) == ['mobilenet_v1_0.25_128']


def test_a_damaged_or_wrong_slim_archive_keeps_nothing(capsys, tmp_path):
    archive, _ = slim_archive(tmp_path, 'mobilenet_v1_0.25_128', width=0.5)
    cache = tmp_path / 'cache'
    cache.mkdir()
    argv = ['slim:mobilenet_v1_0.25_128', str(tmp_path / 'out'), '--cache_dir', str(cache),
            '--slim_url', 'file://%s/{name}.tgz' % tmp_path]
    assert import_weights.main(argv) == 2
    assert 'MobilenetV1/Conv2d_0/weights has shape [3, 3, 3, 16], MobileNetV1 of that width ' \
           '[3, 3, 3, 8]' in last_error(capsys)
    data = archive.read_bytes()
    (cache / archive.name).write_bytes(data[:len(data) // 2])
    assert import_weights.main(argv) == 2
    assert 'a damaged archive' in last_error(capsys)
    assert sorted(os.listdir(cache)) == [archive.name]  # the user's to delete; nothing extracted
    assert not list(tmp_path.glob('out*'))


def test_bad_sources_and_labels_are_one_line(capsys, tmp_path, keras_files):
    not_tflite = tmp_path / 'notes.tflite'
    not_tflite.write_text('not a model')
    with tf.Graph().as_default(), v1.Session() as sess:  # a network, but not MobileNetV1
        images = v1.placeholder(tf.float32, [1, 32, 32, 3])
        kernel = v1.get_variable('k', [3, 3, 3, 8])
        sess.run(v1.global_variables_initializer())
        other = tmp_path / 'other.tflite'
        other.write_bytes(v1.lite.TFLiteConverter.from_session(
            sess, [images], [tf.nn.relu(tf.nn.conv2d(images, kernel, 2, 'SAME'))]).convert())
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join('name%d' % i for i in range(7)) + '\n')
    folder, _ = keras_files
    for argv, words in [
            ([str(not_tflite), str(tmp_path / 'x')], 'not a TFLite model'),
            ([str(other), str(tmp_path / 'x')], 'no DEPTHWISE_CONV_2D follows its layer Conv2d_0'),
            ([str(tmp_path / 'missing.tflite'), str(tmp_path / 'x')], 'no such file'),
            ([str(folder / 'mine.keras'), str(tmp_path)], 'is a folder; name the checkpoint prefix'),
            ([str(folder / 'mine.keras'), str(tmp_path / 'x'), '--labels', str(labels)],
             '7 names, one a line, for a model of 1000 classes'),
            (['slim:mobilenet_v1_0.3_128', str(tmp_path / 'x')], 'not one of the published')]:
        assert import_weights.main(argv) == 2, argv
        assert words in last_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['labels.txt', 'notes.tflite',
                                                          'other.tflite']


@pytest.mark.parametrize('classes, lines, first, note', [
    (1000, 1001, 'name1', 'its first, \'name0\', dropped'),
    (1001, 1000, 'background', 'class 0 is the background class'),
    (5, 5, 'name0', None), (5, 6, None, '6 names, one a line, for a model of 5 classes')])
def test_predict_names_classes_from_a_labels_file(capsys, tmp_path, classes, lines, first, note):
    """ImageNet's two conventions meet (1001 classes, background first; Keras's 1000); any
    other count is refused."""
    tflite, _ = frozen_tflite(tmp_path, capsys, classes=classes)
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join('name%d' % i for i in range(lines)) + '\n')
    photo = tmp_path / 'photo.png'
    from PIL import Image
    Image.fromarray(pictures(64, 1)[0].astype(np.uint8)).save(photo)
    code = predict.main([str(tflite), str(photo), '--labels', str(labels), '--top_k', str(classes)])
    if first is None:
        assert code == 2 and note in last_error(capsys)
        return
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert note is None or note in out[0]
    shown = {item['label'] for item in json.loads(out[-1])[0]['top_k']}
    assert first in shown and len(shown) == classes


def converted(sess, inputs, outputs):
    return v1.lite.TFLiteConverter.from_session(sess, inputs, outputs).convert()


def test_what_the_file_does_not_say_is_asked_not_guessed(capsys, tmp_path):
    """A float input with no preprocessing in the graph nor in TFLite metadata needs
    --normalization; a head that goes on past slim's logits (another layer) is not slim's: the
    base alone is imported."""
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, [1, 64, 64, 3], name='input')
        logits, points = mobilenet.mobilenet_v1(images, num_classes=6, depth_multiplier=0.25,
                                                is_training=False)
        extra = v1.get_variable('extra', [6, 3])
        sess.run(v1.global_variables_initializer())
        (tmp_path / 'float.tflite').write_bytes(converted(sess, [images], [points['Predictions']]))
        (tmp_path / 'more.tflite').write_bytes(converted(sess, [images], [
            tf.nn.softmax(tf.matmul(tf.nn.relu(logits), extra))]))
    assert import_weights.main([str(tmp_path / 'float.tflite'), str(tmp_path / 'a')]) == 2
    assert 'pass --normalization inception' in last_error(capsys)
    line, _ = imported_line(capsys, [str(tmp_path / 'float.tflite'), str(tmp_path / 'a'),
                                     '--normalization', 'inception'])
    assert line['num_classes'] == 6 and line['check']['max_probability_difference'] < 1e-4
    line, said = imported_line(capsys, [str(tmp_path / 'more.tflite'), str(tmp_path / 'b'),
                                        '--normalization', 'inception'])
    assert line['num_classes'] is None and 'the base alone is imported' in said


def test_prefixes_urls_and_caches_that_cannot_be_are_one_line(capsys, tmp_path):
    tflite, _ = frozen_tflite(tmp_path, capsys)
    (tmp_path / 'file').write_text('')
    for argv in (['', '--slim_url', 'x'], ['dir/'], ['x', '--slim_url', 'http://h/{name}?v={version}']):
        with pytest.raises(SystemExit) as exit_info:
            import_weights.parse_args(['slim:mobilenet_v1_0.25_128'] + argv)
        assert exit_info.value.code == 2
    capsys.readouterr()
    assert import_weights.main(['slim:mobilenet_v1_0.25_128', str(tmp_path / 'x'), '--cache_dir',
                                str(tmp_path / 'file' / 'cache')]) == 2
    assert 'is a file, not a folder' in last_error(capsys)
    # freeze_graph.py's metadata beside its .tflite is not an import's to replace.
    assert import_weights.main([str(tflite), str(tflite)[:-len('.tflite')]]) == 2
    assert "mine.json: exists and is not an import's settings" in last_error(capsys)
