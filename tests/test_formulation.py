"""1x1 convolutions as matmul: the same numbers and variables as Conv2D, and the kernel choice."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from preflight import command_line
from preflight import errors
from preflight import cpu_kernels
import freeze_graph
from deployment import models
import mobilenet
import train
from training import checks
from training import model
from tasks import classifier

v1 = tf.compat.v1
ROOT = os.path.join(os.path.dirname(__file__), '..')


def loss_logits_gradients(cfg, pointwise, images, labels, towers):
    """Training-mode logits, loss and d(loss)/d(every variable) for one formulation; the
    variables come from a fixed seed, so both formulations start from the same weights."""
    with tf.Graph().as_default():
        v1.set_random_seed(7)
        logits = model.build_model(tf.constant(images), cfg, 10, is_training=True,
                                      towers=towers, pointwise=pointwise)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.constant(labels), logits=logits)) + tf.add_n(
            v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES))
        variables = v1.trainable_variables()
        gradients = tf.gradients(loss, variables)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            values = sess.run([logits, loss] + gradients)
    names = [v.op.name for v in variables]
    return values[0], values[1], dict(zip(names, values[2:]))


@pytest.mark.parametrize('towers', [1, 2])
@pytest.mark.parametrize('explicit_padding', [False, True])
@pytest.mark.parametrize('width', [1.0, 0.25])
@pytest.mark.parametrize('stem', ['cifar', 'imagenet'])
def test_matmul_computes_what_conv2d_computes(stem, width, explicit_padding, towers):
    cfg = dict(command_line.parse_config(['--stem', stem, '--width', str(width),
                                 '--use_explicit_padding', str(int(explicit_padding))]),
               dropout_keep_prob=1.0)
    rng = np.random.RandomState(0)
    # 8 images, 4 a tower: batch norm over 2 images of a 1x1 map (the ImageNet stem's last
    # layers at 32x32) maps every value to +-1, and its gradient is round-off alone.
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 3, 5, 9, 1, 2, 7, 8], np.int32)
    conv_logits, conv_loss, conv_grads = loss_logits_gradients(cfg, 'conv2d', images, labels, towers)
    mm_logits, mm_loss, mm_grads = loss_logits_gradients(cfg, 'matmul', images, labels, towers)
    np.testing.assert_allclose(mm_logits, conv_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mm_loss, conv_loss, rtol=1e-5)
    assert sorted(mm_grads) == sorted(conv_grads)
    for name, grad in conv_grads.items():
        # Float32 round-off grown through up to 28 layers of batch-norm backprop: measured at
        # most 2.3e-4 of the gradient's norm with Eigen, 5.0e-3 with oneDNN on one core (its
        # single-thread kernels sum in another order); a wrong formula is ~1.
        error = np.linalg.norm(mm_grads[name] - grad) / (np.linalg.norm(grad) + 1e-12)
        assert error < 3e-2, (name, error)


def test_matmul_takes_images_of_unknown_size():
    """A backbone on a [None, None, None, 3] input: the matmul reshapes with run-time shapes."""
    images = np.random.RandomState(2).uniform(-1, 1, (2, 40, 56, 3)).astype(np.float32)
    outputs = {}
    for pointwise in ('conv2d', 'matmul'):
        with tf.Graph().as_default():
            v1.set_random_seed(3)
            placeholder = v1.placeholder(tf.float32, [None, None, None, 3])
            net, _ = mobilenet.mobilenet_v1_base(placeholder, depth_multiplier=0.25,
                                                 is_training=False, pointwise=pointwise)
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                outputs[pointwise] = sess.run(net, {placeholder: images})
    assert outputs['matmul'].shape == (2, 2, 2, 256)
    np.testing.assert_allclose(outputs['matmul'], outputs['conv2d'], rtol=1e-4, atol=1e-5)


def test_an_unsettled_auto_trains_as_matmul():
    """Code that calls the training step without cpu_kernels.settle gets 'auto' resolved too."""
    cfg = dict(command_line.parse_config(['--width', '0.25']), pointwise='auto')
    assert cpu_kernels.training_pointwise(cfg) == 'matmul'
    with tf.Graph().as_default():
        images = tf.zeros([2, 32, 32, 3])
        step = classifier.training_step(cfg, images, tf.constant([1, 2]), 10,
                                      v1.train.get_or_create_global_step(), 0.1)
        types = {op.type for op in tf.compat.v1.get_default_graph().get_operations()}
    assert step[2] is not None and 'MatMul' in types
    with pytest.raises(errors.UsageError, match="--pointwise must be one of auto, conv2d, matmul"):
        checks.check_config(dict(cfg, pointwise='dense'))


def test_a_checkpoint_moves_between_formulations_and_into_the_frozen_graph(capsys, tiny_cifar,
                                                                          tmp_path):
    flags = ['--width', '0.25', '--batch_size', '16', '--eval_batch_size', '16', '--epochs', '1',
             '--steps_per_epoch', '3', '--data_dir', str(tiny_cifar), '--ckpt_dir', str(tmp_path)]
    assert train.main(flags + ['--pointwise', 'matmul']) == 0
    out = capsys.readouterr().out
    assert out.startswith('CPU: ') and '1x1 convolutions as matmul (--pointwise matmul)' in out
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['pointwise'] == 'matmul' and saved['onednn'] in ('on', 'off')
    assert saved['cpu'] in ('AMX', 'AVX-512', 'AVX2', 'older')

    images = np.random.RandomState(1).randint(0, 256, (6, 32, 32, 3)).astype(np.float32)
    prefix = tf.train.latest_checkpoint(str(tmp_path))
    cfg, _ = models.resolve_checkpoint_config(prefix)
    outputs = {}
    for pointwise in ('matmul', 'conv2d'):
        with tf.Graph().as_default(), v1.Session() as sess:
            placeholder = v1.placeholder(tf.float32, [None, 32, 32, 3])
            probs = tf.nn.softmax(model.build_model(placeholder, cfg, 10, is_training=False,
                                                       pointwise=pointwise))
            models.restore_for_inference(sess, prefix, cfg)
            outputs[pointwise] = sess.run(probs, {placeholder: images})
    frozen = tmp_path / 'frozen' / 'm.pb'
    assert freeze_graph.main(['--ckpt', str(tmp_path), '--output', str(frozen), '--tflite', 'none']) == 0
    outputs['frozen'] = models.load_model(str(frozen)).predict(images)
    for name in ('conv2d', 'frozen'):
        np.testing.assert_allclose(outputs[name], outputs['matmul'], atol=1e-5, err_msg=name)
    assert outputs['matmul'].argmax(1).tolist() == outputs['frozen'].argmax(1).tolist()

    # The same run resumes in the other formulation: a checkpoint holds no formulation.
    assert train.main(flags + ['--pointwise', 'conv2d', '--epochs', '2']) == 0
    assert json.loads((tmp_path / 'config.json').read_text())['pointwise'] == 'conv2d'


AVX2 = frozenset({'avx', 'avx2', 'fma', 'sse4_2'})
AVX512 = AVX2 | {'avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512cd'}
AVX512_VNNI = AVX512 | {'avx512_vnni'}
AMX = AVX512_VNNI | {'amx_tile', 'amx_int8', 'amx_bf16', 'avx512_bf16'}


def choice(flags, environ=None, **cfg):
    return cpu_kernels.choose(dict(dict(onednn='auto', pointwise='auto', stem='cifar'), **cfg),
                              flags, environ or {})


@pytest.mark.parametrize('flags,expected', [(AVX2, 'AVX2'), (AVX512, 'AVX-512'),
                                            (AVX512_VNNI, 'AVX-512'), (AMX, 'AMX'),
                                            (frozenset({'sse4_2', 'avx'}), 'older')])
def test_instruction_set_from_the_cpu_flags(flags, expected):
    assert cpu_kernels.instruction_set(flags) == expected


def test_the_choice_follows_the_measurements():
    # oneDNN wherever it has AVX-512 kernels, whatever TensorFlow's default (no VNNI: off).
    for flags in (AVX512, AVX512_VNNI, AMX):
        for stem in ('cifar', 'imagenet'):
            assert choice(flags, stem=stem)['onednn'] is True
    # AVX2: oneDNN for the CIFAR stem, Eigen for the ImageNet stem's 1x1 maps.
    assert choice(AVX2, stem='cifar')['onednn'] is True
    assert choice(AVX2, stem='imagenet')['onednn'] is False
    # Older CPUs, or no flags read (not Linux): TensorFlow decides, as it would alone.
    assert choice(frozenset({'avx'}))['onednn'] is None
    assert choice(frozenset())['onednn'] is None
    # ONEDNN_MAX_CPU_ISA caps oneDNN's kernels: an AVX-512 CPU then runs AVX2's.
    capped = {'ONEDNN_MAX_CPU_ISA': 'AVX2'}
    assert choice(AVX512_VNNI, capped, stem='imagenet')['onednn'] is False
    assert cpu_kernels.onednn_kernels(AMX, {'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE'}) == 'AVX-512'
    assert cpu_kernels.onednn_kernels(AVX2, {'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE_AMX'}) == 'AVX2'
    for unlimited in ('', 'ALL', 'DEFAULT'):
        assert cpu_kernels.onednn_kernels(AMX, {'ONEDNN_MAX_CPU_ISA': unlimited}) == 'AMX'
    assert cpu_kernels.onednn_kernels(AMX, {'ONEDNN_MAX_CPU_ISA': 'AVX10_1_512'}) == 'AVX-512'
    for flags in (AVX2, AVX512, AMX):
        assert choice(flags)['pointwise'] == 'matmul'


def test_flags_and_the_environment_override_the_choice():
    assert choice(AVX512_VNNI, onednn='off')['onednn'] is False
    assert choice(AVX2, onednn='on', stem='imagenet')['onednn'] is True
    assert choice(AVX512_VNNI, {'TF_ENABLE_ONEDNN_OPTS': '0'})['onednn'] is False
    assert choice(AVX2, {'TF_ENABLE_ONEDNN_OPTS': 'true'}, stem='imagenet')['onednn'] is True
    # The flag is the more explicit of the two.
    assert choice(AVX2, {'TF_ENABLE_ONEDNN_OPTS': '1'}, onednn='off')['onednn'] is False
    assert choice(AVX2, pointwise='conv2d')['pointwise'] == 'conv2d'
    assert 'TF_ENABLE_ONEDNN_OPTS=0' in choice(AVX2, {'TF_ENABLE_ONEDNN_OPTS': '0'})['why']


def test_towers_are_two_on_a_cpu_of_two_cores_if_each_keeps_32_images():
    def towers(batch=128, cores=2, gpu=False, value='auto'):
        return cpu_kernels.towers_choice(value, batch, cores=cores, gpu=gpu)[0]
    assert towers() == 2 and towers(cores=16) == 2 and towers(batch=64) == 2
    # Batch norm over fewer than 32 images a tower (the seed preset's 16), one core, a GPU: one.
    assert towers(batch=62) == 1 and towers(batch=16) == 1 and towers(batch=65) == 1
    assert towers(cores=1) == 1 and towers(gpu=True) == 1
    assert towers(value=3, cores=1) == 3
    assert '64 images a tower' in cpu_kernels.towers_choice('auto', 128, cores=2, gpu=False)[1]
    assert not cpu_kernels.gpu_present({'CUDA_VISIBLE_DEVICES': '-1'})
    # Code that calls the training step without settle gets the same answer.
    cfg = command_line.parse_config(['--batch_size', '16'])
    assert cfg['towers'] == 'auto' and cpu_kernels.training_towers(cfg) == 1


def test_the_towers_chosen_are_printed_and_recorded(capsys, tiny_cifar, tmp_path):
    flags = ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(tmp_path), '--width', '0.25',
             '--batch_size', '64', '--epochs', '1', '--steps_per_epoch', '1', '--eval_batch_size',
             '40']
    assert train.main(flags) == 0
    first = capsys.readouterr().out.splitlines()[0]
    expected = cpu_kernels.towers_choice('auto', 64)[0]
    assert first.startswith('CPU: ') and ('; %d tower' % expected) in first
    assert json.loads((tmp_path / 'config.json').read_text())['towers'] == expected


@pytest.mark.parametrize('flags,message', [
    (['--onednn', 'yes'], "--onednn must be one of auto, on, off, got 'yes'"),
    (['--pointwise', 'dense'], "--pointwise must be one of auto, conv2d, matmul, got 'dense'"),
])
def test_bad_kernel_flags_are_one_line(capsys, flags, message):
    assert train.main(flags) == 2
    assert capsys.readouterr().err.strip() == 'train.py: error: ' + message


def test_settle_sets_the_kernels_before_tensorflow_is_imported(tmp_path):
    """In a fresh process the flag decides which kernels TensorFlow runs."""
    code = ('import sys; from preflight import command_line, cpu_kernels\n'
            'cfg, line = cpu_kernels.settle(command_line.parse_config(sys.argv[1:]))\n'
            'import tensorflow\n'
            'print(cfg["onednn"], cpu_kernels.onednn_enabled())\n')
    environ = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
    environ.update(TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT)
    for flag, expected in (('off', 'off False'), ('on', 'on True')):
        result = subprocess.run([sys.executable, '-c', code, '--onednn', flag], env=environ,
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected


def test_settle_after_import_records_the_kernels_tensorflow_has():
    cfg = command_line.parse_config([])
    environ = {}
    settled, line = cpu_kernels.settle(dict(cfg, onednn='on' if not cpu_kernels.onednn_enabled()
                                            else 'off'), environ=environ)
    # TensorFlow is imported here: its kernels cannot change, so the record says what runs.
    assert settled['onednn'] == ('on' if cpu_kernels.onednn_enabled() else 'off')
    assert 'TensorFlow was imported before the choice' in line and environ == {}
