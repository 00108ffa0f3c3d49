"""A model of your own images carried to devices: frozen and calibrated on its own data, photos
seen as its evaluation saw them, and a published-style ImageNet checkpoint fine-tuned to it."""
import json

import numpy as np
import tensorflow as tf
from PIL import Image

import evaluate
import freeze_graph
from pipelines import streamed
from deployment import models
import mobilenet
import predict
import train
from conftest import own_images

v1 = tf.compat.v1
SMALL = ['--width', '0.25', '--batch_size', '4', '--eval_batch_size', '5', '--epochs', '1']


def framed_photo(path):
    """A green centre in a thick red frame: a central crop and a whole-image resize differ."""
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[..., 0] = 230
    pixels[8:52, 10:80] = (20, 200, 40)
    Image.fromarray(pixels).save(path)
    return str(path)


def predicted(capsys, argv):
    assert predict.main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_model_of_own_images_at_48_is_calibrated_on_them_and_shown_their_view(
        capsys, tmp_path, monkeypatch):
    root = own_images(tmp_path / 'own')
    ckpt = tmp_path / 'ckpt'
    assert train.main(SMALL + ['--dataset', 'folder', '--data_dir', str(root), '--val_size', '6',
                               '--image_size', '48', '--stem', 'imagenet',
                               '--ckpt_dir', str(ckpt)]) == 0
    capsys.readouterr()
    # No CIFAR-10 here and no network: int8 calibration must come from the run's own images.
    monkeypatch.chdir(tmp_path)
    pb = tmp_path / 'frozen' / 'own.pb'
    assert freeze_graph.main(['--ckpt', str(ckpt), '--output', str(pb), '--tflite',
                              'float32,int8', '--calibration_images', '8']) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    meta = json.loads((tmp_path / 'frozen' / 'own.json').read_text())
    assert meta['central_fraction'] == 0.875 and meta['input_size'] == 48
    assert meta['labels'] == ['cat', 'dog', 'eel']

    photo = framed_photo(tmp_path / 'framed.png')
    pixels = tf.io.decode_image(tf.io.read_file(photo), channels=3)
    centre = streamed.eval_view(pixels, 48, 0.875).numpy()
    whole = streamed.eval_view(pixels, 48, 1.0).numpy()
    np.testing.assert_allclose(centre, tf.image.resize(tf.cast(pixels[3:57, 5:85], tf.float32),
                                                       [48, 48]), atol=1e-4)
    assert np.abs(centre - whole).max() > 50
    shown = []
    load = models.load_model

    def spied(*args, **kwargs):  # the pixels predict.py gives the model
        model = load(*args, **kwargs)
        run = model.predict
        model.predict = lambda images: shown.append(np.asarray(images)) or run(images)
        return model

    monkeypatch.setattr(models, 'load_model', spied)
    for path in (str(pb), str(ckpt), str(tmp_path / 'frozen' / 'own.tflite')):
        assert models.load_model(path).central_fraction == 0.875
        result = predicted(capsys, [path, photo, '--top_k', '3'])[0]['top_k']
        np.testing.assert_allclose(shown[-1], centre[None], atol=1e-3)
        expected = load(path).predict(centre[None])[0]
        by_label = {t['label']: t['probability'] for t in result}
        np.testing.assert_allclose([by_label[name] for name in ['cat', 'dog', 'eel']], expected,
                                   atol=2e-6)

    # The int8 model scores the run's held-out images, calibrated on its training ones.
    assert evaluate.main([str(tmp_path / 'frozen' / 'own_int8.tflite'), '--dataset', 'folder',
                          '--data_dir', str(root), '--split', 'val', '--val_size', '6']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['num_images'] in (5, 6) and [r['label'] for r in report['per_class']] == [
        'cat', 'dog', 'eel']


def test_calibration_needs_as_many_images_as_asked(capsys, tmp_path):
    root = own_images(tmp_path / 'own')
    ckpt = tmp_path / 'ckpt'
    assert train.main(SMALL + ['--dataset', 'folder', '--data_dir', str(root),
                               '--steps_per_epoch', '1', '--ckpt_dir', str(ckpt)]) == 0
    capsys.readouterr()
    assert freeze_graph.main(['--ckpt', str(ckpt), '--output', str(tmp_path / 'out' / 'm.pb'),
                              '--tflite', 'int8', '--calibration_images', '500']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['freeze_graph.py: error: --calibration_images 500: only 25 training images in '
                   '%s' % root]
    assert not (tmp_path / 'out').exists()


def published_checkpoint(path, width=0.25, size=64):
    """A checkpoint as TF-Slim's mobilenet_v1_*.ckpt files are: slim's names, 1001 classes,
    global_step and moving-average shadows beside the weights, no config.json."""
    with tf.Graph().as_default(), v1.Session() as sess:
        images = v1.placeholder(tf.float32, [None, size, size, 3])
        mobilenet.mobilenet_v1(images, num_classes=1001, depth_multiplier=width, is_training=True)
        v1.train.get_or_create_global_step()
        weights = [v for v in v1.global_variables() if v.op.name.startswith('MobilenetV1/')]
        ema = tf.train.ExponentialMovingAverage(0.999)
        ema.apply(weights)
        sess.run(v1.global_variables_initializer())
        prefix = v1.train.Saver().save(sess, str(path))
    return prefix


def model_values(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith('MobilenetV1/') and 'Momentum' not in name
            and 'ExponentialMovingAverage' not in name}


def test_a_published_imagenet_checkpoint_fine_tunes_to_own_classes(capsys, tmp_path):
    width = 0.25
    published = published_checkpoint(tmp_path / 'mobilenet_v1_0.25_64.ckpt', width)
    root = own_images(tmp_path / 'own')
    common = ['--dataset', 'folder', '--data_dir', str(root), '--val_size', '6', '--image_size',
              '64', '--stem', 'imagenet', '--normalization', 'inception', '--width', str(width),
              '--batch_size', '4', '--eval_batch_size', '5', '--epochs', '1']
    head = tmp_path / 'head'
    assert train.main(common + ['--load_pretrain', '1', '--pretrain_path', published,
                                '--checkpoint_exclude_scopes', 'MobilenetV1/Logits',
                                '--trainable_scopes', 'MobilenetV1/Logits',
                                '--ckpt_dir', str(head)]) == 0
    out = capsys.readouterr().out
    assert 'MobilenetV1/Logits/Conv2d_1c_1x1/weights excluded by --checkpoint_exclude_scopes' in out
    before, after = model_values(published), model_values(tf.train.latest_checkpoint(str(head)))
    base = [n for n in before if not n.startswith('MobilenetV1/Logits')]
    # 27 layers of weights, beta, gamma and the two moving statistics, all as published.
    assert len(base) == 27 * 5 and all(np.array_equal(after[n], before[n]) for n in base)
    assert before['MobilenetV1/Logits/Conv2d_1c_1x1/biases'].shape == (1001,)
    assert after['MobilenetV1/Logits/Conv2d_1c_1x1/biases'].shape == (3,)

    full = tmp_path / 'full'
    assert train.main(common + ['--load_pretrain', '1', '--pretrain_path', str(head), '--lr',
                                '0.01', '--ckpt_dir', str(full)]) == 0
    capsys.readouterr()
    pb = tmp_path / 'frozen' / 'mine.pb'
    assert freeze_graph.main(['--ckpt', str(full), '--output', str(pb), '--tflite', 'float32',
                              ]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (tmp_path / 'frozen' / 'mine_labels.txt').read_text().split() == ['cat', 'dog', 'eel']
    photo = framed_photo(tmp_path / 'framed.png')
    for model in (pb, tmp_path / 'frozen' / 'mine.tflite'):
        top = predicted(capsys, [str(model), photo])[0]['top_k']
        assert sorted(t['label'] for t in top) == ['cat', 'dog', 'eel']
