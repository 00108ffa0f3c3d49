"""train.py end to end on a tiny learnable CIFAR-10: learning, resume, pretrained restore, errors."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

import config
from preflight import cpu_kernels
import mobilenet
from preflight import command_line
import train
from training import trainer
from training import model
from training import optimization
from training import train_graph

v1 = tf.compat.v1

# Small and quick: width 0.25, a few steps of batch 16; fast-moving batch-norm statistics.
SMALL = ['--width', '0.25', '--batch_size', '16', '--batch_norm_decay', '0.8', '--eval_batch_size', '16']


def run(capsys, data_dir, ckpt_dir, *flags):
    """train.main with small settings; returns (exit code, stdout lines after the CPU and data
    lines, stderr)."""
    code = train.main(SMALL + ['--data_dir', str(data_dir), '--ckpt_dir', str(ckpt_dir)] + list(flags))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    # The kernels chosen and the data read, before anything else.
    while lines and lines[0].startswith(('CPU: ', 'Data: ')):
        lines = lines[1:]
    return code, lines, err


def interrupt_after_steps(monkeypatch, count):
    """Ctrl-C once the count-th training step of train.main has run (at its progress update)."""
    updates = []
    real_update = trainer.tqdm.update

    def interrupting_update(self, n=1):
        updates.append(n)
        if len(updates) == count:
            raise KeyboardInterrupt
        return real_update(self, n)

    monkeypatch.setattr(trainer.tqdm, 'update', interrupting_update)


def metrics(ckpt_dir):
    return [json.loads(line) for line in (ckpt_dir / 'metrics.jsonl').read_text().splitlines()]


def test_every_config_value_is_a_documented_flag(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '10000')  # one line per flag: no wrapping after hyphens
    with pytest.raises(SystemExit) as exit_info:
        command_line.parse_config(['--help'])
    assert exit_info.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    for name, default in config.DEFAULTS.items():
        metavar = getattr(command_line.FLAG_TYPES.get(name), 'metavar', type(default).__name__.upper())
        assert '--%s %s %s (default: %r;' % (name, metavar, command_line.HELP[name], default) in text
    assert '--preset {%s}' % ','.join(sorted(config.PRESETS)) in text


def test_presets_and_flags_resolve_in_order():
    cfg = command_line.parse_config(['--preset', 'seed', '--batch_size', '32', '--augment', '0'])
    assert (cfg['optimizer'], cfg['lr'], cfg['batch_size'], cfg['augment']) == ('adam', 1e-3, 32, False)
    assert cfg['lr_schedule'] == 'exponential' and cfg['lr_decay'] == 0.99
    # The old README's command means what it said.
    cfg = command_line.parse_config('--lr 1e-3 --batch_size 16 --epochs 20 --load_pretrain 0'.split())
    assert (cfg['lr'], cfg['batch_size'], cfg['epochs'], cfg['load_pretrain']) == (1e-3, 16, 20, False)


def test_a_few_epochs_lower_the_loss_and_learn(capsys, tiny_cifar, tmp_path):
    code, out, err = run(capsys, tiny_cifar, tmp_path, '--preset', 'seed', '--epochs', '8',
                         '--steps_per_epoch', '10', '--lr', '3e-3')
    assert code == 0, err
    records = metrics(tmp_path)
    assert [r['epoch'] for r in records] == list(range(1, 9))
    assert [r['step'] for r in records] == list(range(10, 90, 10))
    # Measured over 16 runs (seeds 0-5, oneDNN on and off, both 1x1 formulations): the last
    # epoch's loss is 0.28 to 0.56 of the first's, test accuracy 0.65 to 0.88 (chance: 0.1).
    assert records[-1]['train_loss'] < 0.8 * records[0]['train_loss']
    summary = json.loads(out[-1])
    assert summary['epochs'] == 8 and summary['final_test_accuracy'] == records[-1]['test_accuracy']
    assert summary['final_test_accuracy'] >= 0.4
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['optimizer'] == 'adam' and saved['steps_per_epoch'] == 10
    assert list(tmp_path.glob('events.out.tfevents.*'))
    assert tf.train.latest_checkpoint(str(tmp_path / 'best'))


def test_exponential_decay_is_0_99_per_epoch():
    cfg = dict(command_line.parse_config(['--preset', 'seed']), lr=0.5)
    with tf.Graph().as_default():
        progress = v1.placeholder(tf.float32, [])
        lr = optimization.learning_rate(cfg, progress)
        with v1.Session() as sess:
            got = [sess.run(lr, {progress: p}) for p in (0.0, 0.9, 1.0, 3.5)]
    np.testing.assert_allclose(got, [0.5, 0.5, 0.5 * 0.99, 0.5 * 0.99 ** 3], rtol=1e-6)


@pytest.mark.parametrize('schedule,at_half', [('cosine', 0.5), ('linear', 0.5), ('step', 0.1)])
def test_other_schedules(schedule, at_half):
    cfg = dict(command_line.parse_config([]), lr=1.0, lr_schedule=schedule, epochs=10, warmup_epochs=2.0,
               lr_step_epochs=5)
    with tf.Graph().as_default():
        progress = v1.placeholder(tf.float32, [])
        lr = optimization.learning_rate(cfg, progress)
        with v1.Session() as sess:
            assert sess.run(lr, {progress: 1.0}) < 0.55  # warm-up halfway: at most half the peak
            np.testing.assert_allclose(sess.run(lr, {progress: 5.0}), at_half, rtol=1e-3)


def test_resume_continues_step_epoch_lr_and_weights(capsys, tiny_cifar, tmp_path, monkeypatch):
    flags = ['--preset', 'seed', '--epochs', '3', '--steps_per_epoch', '6', '--lr_decay', '0.5']
    # Ctrl-C in the middle of epoch 2, after 4 of its 6 steps.
    interrupt_after_steps(monkeypatch, 10)
    code, _, err = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 130 and 'run the same command to resume' in err
    prefix = tf.train.latest_checkpoint(str(tmp_path))
    assert prefix.endswith('model.ckpt-10')
    reader = tf.train.load_checkpoint(prefix)
    assert (reader.get_tensor('train_state/epoch'), reader.get_tensor('train_state/step_in_epoch')) == (1, 4)
    saved_weights = reader.get_tensor('MobilenetV1/Conv2d_0/weights')
    monkeypatch.undo()

    # The same command resumes: 2 more steps finish epoch 2, then epoch 3; no step is repeated.
    code, out, err = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 0, err
    assert any(line.startswith('Resuming from') and line.endswith('model.ckpt-10') for line in out)
    records = metrics(tmp_path)
    assert [(r['epoch'], r['step']) for r in records] == [(1, 6), (2, 12), (3, 18)]
    # lr of the last step of each epoch: 1e-3 * 0.5**(epoch - 1).
    np.testing.assert_allclose([r['lr'] for r in records], [1e-3, 5e-4, 2.5e-4], rtol=1e-5)
    assert json.loads(out[-1])['epochs'] == 3
    final = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path)))
    # Adam moved on from the saved weights rather than from a fresh initialisation.
    moved = final.get_tensor('MobilenetV1/Conv2d_0/weights') - saved_weights
    assert 0 < np.abs(moved).max() < 0.05
    assert final.get_tensor('MobilenetV1/Conv2d_0/weights/Adam').any()

    # Once done, the same command trains nothing more.
    code, out, _ = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 0 and len(metrics(tmp_path)) == 3 and json.loads(out[-1])['epochs'] == 3


def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one_dropout_and_all(
        capsys, tiny_cifar, tmp_path, monkeypatch):
    # Heavy dropout, augmentation on: every random draw must come back the same after resume.
    flags = ['--epochs', '2', '--steps_per_epoch', '4', '--dropout_keep_prob', '0.5',
             '--optimizer', 'momentum', '--eval_every', '2']
    code, _, err = run(capsys, tiny_cifar, tmp_path / 'whole', *flags)
    assert code == 0, err
    interrupt_after_steps(monkeypatch, 3)
    code, _, _ = run(capsys, tiny_cifar, tmp_path / 'cut', *flags)
    assert code == 130
    monkeypatch.undo()
    code, _, err = run(capsys, tiny_cifar, tmp_path / 'cut', *flags)
    assert code == 0, err
    whole = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'whole')))
    cut = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'cut')))
    names = [n for n in whole.get_variable_to_shape_map() if n.startswith('MobilenetV1/')]
    assert len(names) > 100
    for name in names:
        np.testing.assert_array_equal(cut.get_tensor(name), whole.get_tensor(name), err_msg=name)
    assert metrics(tmp_path / 'cut')[-1]['test_loss'] == metrics(tmp_path / 'whole')[-1]['test_loss']


def write_imagenet_checkpoint(path, width=0.25):
    """A stand-in for slim's mobilenet_v1_<width>_224.ckpt: same names, a 1001-class head."""
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [1, 224, 224, 3])
        mobilenet.mobilenet_v1(images, num_classes=1001, depth_multiplier=width)
        v1.train.get_or_create_global_step()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            values = {v.op.name: sess.run(v) for v in v1.global_variables()}
            return v1.train.Saver().save(sess, str(path), write_meta_graph=False), values


def test_pretrained_restore_skips_a_mismatched_head(capsys, tiny_cifar, tmp_path):
    prefix, values = write_imagenet_checkpoint(tmp_path / 'mobilenet_v1_0.25_224.ckpt')
    ckpt_dir = tmp_path / 'run'
    code, out, err = run(capsys, tiny_cifar, ckpt_dir, '--load_pretrain', '1', '--pretrain_path', prefix,
                         '--epochs', '1', '--steps_per_epoch', '1', '--lr', '1e-12',
                         '--optimizer', 'momentum', '--warmup_epochs', '0')
    assert code == 0, err
    assert out[0] == 'Restored 135 variables from %s; skipped 2:' % prefix
    assert out[1] == ('  MobilenetV1/Logits/Conv2d_1c_1x1/weights has shape [1, 1, 256, 1001] in the '
                      'checkpoint, [1, 1, 256, 10] in the model')
    assert out[2].startswith('  MobilenetV1/Logits/Conv2d_1c_1x1/biases')
    assert metrics(ckpt_dir)[0]['step'] == 1  # the step count starts at zero, not the checkpoint's
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(ckpt_dir)))
    for name in ('MobilenetV1/Conv2d_0/weights', 'MobilenetV1/Conv2d_13_pointwise/weights'):
        np.testing.assert_allclose(after.get_tensor(name), values[name], atol=1e-6)


def test_pretrained_float16_weights_restore(capsys, tiny_cifar, tmp_path):
    _, values = write_imagenet_checkpoint(tmp_path / 'full')
    with tf.Graph().as_default():
        half = {n: tf.Variable(v.astype(np.float16)) for n, v in values.items() if v.dtype == np.float32}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            prefix = v1.train.Saver(half).save(sess, str(tmp_path / 'half'), write_meta_graph=False)
    (tmp_path / 'no_state').mkdir()
    code, out, err = run(capsys, tiny_cifar, tmp_path / 'run', '--load_pretrain', '1',
                         '--pretrain_path', str(tmp_path / 'no_state'), '--epochs', '1')
    assert code == 2 and 'no checkpoint in this folder' in err  # no "checkpoint" index file
    code, out, err = run(capsys, tiny_cifar, tmp_path / 'run', '--load_pretrain', '1',
                         '--pretrain_path', prefix, '--epochs', '1', '--steps_per_epoch', '1')
    assert code == 0, err
    assert out[0].startswith('Restored 135 variables')


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(capsys, tiny_cifar, tmp_path):
    flags = ['--optimizer', 'momentum', '--warmup_epochs', '0', '--steps_per_epoch', '3']
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '1', '--lr', '1e-3', *flags)
    assert code == 0, err
    good = tf.train.latest_checkpoint(str(tmp_path))
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '3', '--lr', '1e30', *flags)
    assert code == 1
    assert 'loss is nan' in err or 'loss is inf' in err
    assert tf.train.latest_checkpoint(str(tmp_path)) == good


@pytest.mark.parametrize('flags,message', [
    (['--optimizer', 'rmsprop'], '--optimizer must be one of adam, momentum, nesterov'),
    (['--load_pretrain', '1', '--pretrain_path', ''], '--load_pretrain 1 needs --pretrain_path'),
    (['--load_pretrain', '1', '--pretrain_path', '/nonexistent/model.ckpt'], '/nonexistent/model.ckpt'),
    (['--batch_size', '0'], '--batch_size must be greater than 0'),
    (['--image_size', '0'], '--image_size must be a finite number greater than 0'),
    (['--val_size', '160'], '--val_size 160 leaves no training images (there are 160)'),
    (['--ema_decay', '1'], '--ema_decay must be in [0, 1)'),
    (['--cutout', '33'], '--cutout must be a side in pixels from 0 (off) to 32'),
    (['--cutout', '-1'], '--cutout must be a side in pixels from 0 (off) to 32'),
    (['--cutout', '8', '--augment', '0'], '--cutout 8 needs --augment 1'),
    (['--eval_every', '0'], '--eval_every must be greater than 0'),
    (['--towers', '0'], "--towers must be 'auto' or a whole number greater than 0, got 0"),
    (['--towers', '3'], '--batch_size 16 is not a multiple of --towers 3'),
    (['--weight_decay', 'nan'], '--weight_decay must be a finite number, got nan'),
    (['--lr', 'inf'], '--lr must be a finite number, got inf'),
    (['--momentum', '1'], '--momentum must be in [0, 1)'),
    (['--batch_norm_decay', '1.5'], '--batch_norm_decay must be in [0, 1)'),
    (['--lr_decay', '0'], '--lr_decay must be greater than 0'),
    (['--stem', 'resnet'], '--stem must be one of imagenet, cifar'),
    (['--width', '0'], '--width must be a finite number greater than 0'),
    (['--ckpt_dir', '/dev/null/ckpt'], '--ckpt_dir /dev/null/ckpt: /dev/null is a file, not a folder'),
    (['--batch_size', '4096'], '--batch_size 4096 is larger than the 160 training images'),
    (['--seed', '-1'], '--seed must be from 0 to 4294967295, got -1'),
    (['--seed', '4294967296'], '--seed must be from 0 to 4294967295, got 4294967296'),
])
def test_bad_flags_get_one_line(capsys, tiny_cifar, tmp_path, flags, message):
    code, _, err = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 2
    assert err.startswith('train.py: error: ') and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_data_gets_one_line_naming_the_file(capsys, tiny_cifar, tmp_path):
    broken = tmp_path / 'cifar'
    broken.mkdir()
    for f in tiny_cifar.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / 'data_batch_3').write_bytes((tiny_cifar / 'data_batch_3').read_bytes()[:500])
    code, _, err = run(capsys, broken, tmp_path / 'ckpt', '--epochs', '1')
    assert code == 2 and 'data_batch_3' in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, tmp_path / 'empty', tmp_path / 'ckpt', '--cifar_archive',
                       str(tmp_path / 'missing.tar.gz'))
    assert code == 2 and 'missing.tar.gz' in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_another_width(capsys, tiny_cifar, tmp_path):
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '1', '--steps_per_epoch', '1')
    assert code == 0, err
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '2', '--width', '0.5')
    assert code == 2 and '--width 0.5 differs from the run being resumed' in err


def test_weight_averages_are_what_evaluation_and_export_use(capsys, tiny_cifar, tmp_path):
    code, out, err = run(capsys, tiny_cifar, tmp_path, '--preset', 'seed', '--epochs', '2',
                         '--steps_per_epoch', '8', '--lr', '3e-3', '--ema_decay', '0.9',
                         '--eval_flip_tta', '1')
    assert code == 0, err
    record = metrics(tmp_path)[-1]
    assert 0 <= record['test_accuracy_tta'] <= 1
    assert json.loads(out[-1])['final_test_accuracy_tta'] == record['test_accuracy_tta']
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path)))
    raw = reader.get_tensor('MobilenetV1/Conv2d_0/weights')
    average = reader.get_tensor('MobilenetV1/Conv2d_0/weights/ExponentialMovingAverage')
    assert np.abs(raw - average).max() > 1e-6
    # A checkpoint scored outside training gives the accuracy training logged: both read the averages.
    import data_utils
    from deployment import models
    images, labels = data_utils.load_batch(str(tiny_cifar / 'test_batch'))
    model = models.load_model(str(tmp_path))
    accuracy = (model.predict(images).argmax(1) == labels).mean()
    assert accuracy == pytest.approx(record['test_accuracy'], abs=1e-9)


def test_readme_documents_every_flag():
    with open(os.path.join(os.path.dirname(__file__), '..', 'README.md')) as f:
        readme = f.read()
    rows = dict(re.findall(r'^\| `--(\w+)` \|([^|]*)\|', readme, re.M))
    assert sorted(rows) == sorted(['preset'] + list(config.DEFAULTS))
    assert rows['preset'].strip() == '`%s`' % config.DEFAULT_PRESETS['classify']
    for name, default in config.DEFAULTS.items():
        shown = rows[name].strip().strip('`')
        if isinstance(default, bool):
            assert shown == str(int(default)), name
        elif isinstance(default, (int, float)):
            assert float(shown) == default, name
        else:
            assert shown == default, name
    assert all('`%s`' % name in readme for name in config.PRESETS)


def test_sigterm_saves_like_ctrl_c_and_the_handler_is_given_back(capsys, tiny_cifar, tmp_path,
                                                                   monkeypatch):
    import signal
    before = signal.getsignal(signal.SIGTERM)
    real_update = trainer.tqdm.update
    updates = []

    def terminated_update(self, n=1):
        updates.append(n)
        if len(updates) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another shell
        return real_update(self, n)

    monkeypatch.setattr(trainer.tqdm, 'update', terminated_update)
    real_save = v1.train.Saver.save

    def save_terminated_again(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # a second kill while the first one's save runs
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(v1.train.Saver, 'save', save_terminated_again)
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--preset', 'seed', '--epochs', '1',
                       '--steps_per_epoch', '6')
    # 143 = 128 + SIGTERM, as a shell reports a process ended by it; the save was finished.
    assert code == 143 and 'run the same command to resume' in err
    assert 'Still saving the checkpoint; exiting once it is written.' in err
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith('model.ckpt-3')
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_during_evaluation_resumes_into_that_evaluation(capsys, tiny_cifar, tmp_path,
                                                                    monkeypatch):
    flags = ['--preset', 'seed', '--epochs', '2', '--steps_per_epoch', '4']
    real_evaluate = train_graph.evaluate
    calls = []

    def interrupting_evaluate(sess, g, split):
        calls.append(split)
        if len(calls) == 2:  # the second epoch's evaluation
            raise KeyboardInterrupt
        return real_evaluate(sess, g, split)

    monkeypatch.setattr(train_graph, 'evaluate', interrupting_evaluate)
    code, _, _ = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 130 and [r['epoch'] for r in metrics(tmp_path)] == [1]
    monkeypatch.undo()
    code, out, err = run(capsys, tiny_cifar, tmp_path, *flags)
    assert code == 0, err
    records = metrics(tmp_path)
    # Epoch 2 is evaluated once, without training a step more.
    assert [(r['epoch'], r['step']) for r in records] == [(1, 4), (2, 8)]
    assert records[1]['train_loss'] is None and records[1]['test_accuracy'] >= 0
    assert json.loads(out[-1])['epochs'] == 2


def test_resume_refuses_another_optimizer_or_epoch_length(capsys, tiny_cifar, tmp_path):
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '1', '--steps_per_epoch', '2')
    assert code == 0, err
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '2', '--steps_per_epoch', '2',
                       '--preset', 'seed')
    assert code == 2 and '--optimizer adam differs from the run being resumed' in err
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '2', '--steps_per_epoch', '3')
    assert code == 2 and '--steps_per_epoch 3 differs from the run being resumed' in err


def test_resumed_runs_keep_only_the_last_checkpoints(capsys, tiny_cifar, tmp_path):
    flags = ['--steps_per_epoch', '1', '--keep_checkpoints', '2']
    for epochs in ('2', '4'):
        code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', epochs, *flags)
        assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob('model.ckpt-*.index')) == [
        'model.ckpt-3.index', 'model.ckpt-4.index']
    assert len(list((tmp_path / 'best').glob('model.ckpt-*.index'))) == 1


@pytest.mark.parametrize('script', ['freeze_graph', 'evaluate', 'predict', 'export_weights',
                                    'plot_runs', 'benchmark', 'convert_to_tfrecord'])
def test_readme_documents_every_flag_of_every_script(script, monkeypatch):
    import argparse
    import importlib
    module = importlib.import_module(script)
    with open(os.path.join(os.path.dirname(__file__), '..', 'README.md')) as f:
        readme = f.read()
    flags = []

    def capture(parser, *args, **kwargs):
        flags.extend(o for a in parser._actions for o in a.option_strings if o.startswith('--'))
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    with pytest.raises(SystemExit):
        module.main([])
    # Where the README speaks of the script, not anywhere: '--output' of one is not another's.
    # Tables are left out: train.py's flag table mentions other scripts in passing.
    about = '\n'.join(p for p in readme.split('\n\n')
                      if script + '.py' in p and not p.lstrip().startswith('|'))
    assert flags and not [flag for flag in flags if flag != '--help' and flag not in about]


def test_load_pretrain_uses_the_shipped_weights_by_default(capsys, tiny_cifar, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.join(os.path.dirname(__file__), '..'))  # where pretrained/ is
    code, out, err = run(capsys, tiny_cifar, tmp_path, '--load_pretrain', '1', '--width', '1.0',
                         '--epochs', '1', '--steps_per_epoch', '1', '--lr', '1e-12')
    assert code == 0, err
    assert out[0] == 'Restored 137 variables from pretrained/model.ckpt; skipped 0:'
    shipped = tf.train.load_checkpoint('pretrained/model.ckpt')
    assert shipped.get_tensor('MobilenetV1/Conv2d_0/weights').dtype == np.float16  # restored as float32
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path)))
    np.testing.assert_allclose(after.get_tensor('MobilenetV1/Conv2d_13_pointwise/weights'),
                               shipped.get_tensor('MobilenetV1/Conv2d_13_pointwise/weights'), atol=1e-3)


def test_mixed_precision_and_xla_switches_train_to_the_same_numbers_on_cpu(capsys, tiny_cifar,
                                                                           tmp_path):
    """On a CPU both switches leave the float32 kernels in place: the same first epoch."""
    session = optimization.session_config(dict(config.DEFAULTS, towers=1, xla=True,
                                                mixed_precision=True))
    assert session.graph_options.optimizer_options.global_jit_level == v1.OptimizerOptions.ON_1
    assert session.graph_options.rewrite_options.auto_mixed_precision == 1  # ON
    plain = optimization.session_config(dict(config.DEFAULTS, towers=1))
    assert plain.graph_options.rewrite_options.auto_mixed_precision == 0
    losses = []
    for name, flags in (('plain', []), ('fast', ['--xla', '1', '--mixed_precision', '1'])):
        code, _, err = run(capsys, tiny_cifar, tmp_path / name, '--preset', 'seed', '--epochs', '1',
                           '--steps_per_epoch', '3', *flags)
        assert code == 0, err
        losses.append(metrics(tmp_path / name)[0]['train_loss'])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_resume_notes_a_changed_schedule_and_extends_the_run(capsys, tiny_cifar, tmp_path):
    flags = ['--preset', 'seed', '--steps_per_epoch', '2']
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '1', *flags)
    assert code == 0, err
    code, out, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '2', *flags)
    assert code == 0, err
    assert any(line.startswith('Note: --epochs 2 (was 1) changed') for line in out)
    assert [r['epoch'] for r in metrics(tmp_path)] == [1, 2]


def test_a_fresh_run_does_not_overwrite_another_runs_metrics(capsys, tiny_cifar, tmp_path):
    (tmp_path / 'metrics.jsonl').write_text('{"epoch": 1, "test_accuracy": 0.5}\n')
    code, _, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '1', '--steps_per_epoch', '1')
    assert code == 2 and 'holds a metrics.jsonl and no checkpoint but not the config.json of ' \
        'its run' in err
    assert (tmp_path / 'metrics.jsonl').read_text() == '{"epoch": 1, "test_accuracy": 0.5}\n'


def test_eval_every_scores_every_nth_epoch_and_the_last(capsys, tiny_cifar, tmp_path, monkeypatch):
    flags = ['--steps_per_epoch', '2', '--eval_every', '2', '--eval_flip_tta', '1']
    # Ctrl-C during epoch 4 (the 7th step), so that the checkpoint's last epoch, 3, is unscored.
    interrupt_after_steps(monkeypatch, 7)
    code, out, _ = run(capsys, tiny_cifar, tmp_path, '--epochs', '5', *flags)
    assert code == 130
    assert ['test loss' in line for line in out if line.startswith('epoch ')] == [False, True, False]
    monkeypatch.undo()

    # Cut back to that unscored epoch: the summary scores the weights the run has.
    code, out, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '3', *flags)
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary['epochs'] == 3 and summary['final_test_accuracy'] is not None
    assert summary['final_test_accuracy_tta'] is not None

    code, out, err = run(capsys, tiny_cifar, tmp_path, '--epochs', '5', *flags)
    assert code == 0, err
    records = metrics(tmp_path)
    scored = [r for r in records if 'test_accuracy' in r]
    assert [r['epoch'] for r in scored] == [2, 4, 5]
    assert all('test_accuracy_tta' not in r and 'train_loss' in r for r in records if r['epoch'] in (1, 3))
    summary = json.loads(out[-1])
    assert summary['final_test_accuracy'] == records[-1]['test_accuracy']
    # best/ holds the first of the best scored epochs.
    best = max(r['test_accuracy'] for r in scored)
    assert summary['best_accuracy'] == best
    best_step = next(r['step'] for r in scored if r['test_accuracy'] == best)
    assert tf.train.latest_checkpoint(str(tmp_path / 'best')).endswith('-%d' % best_step)


def _tower_logits(cfg, images, is_training, towers):
    """(logits, variable names, UPDATE_OPS names); the batch size unknown, as in evaluation."""
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.set_random_seed(0)
        batch = v1.placeholder(tf.float32, [None, 32, 32, 3])
        logits = model.build_model(batch, cfg, 10, is_training, towers=towers)
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        sess.run(v1.global_variables_initializer())
        names = sorted(v.op.name for v in v1.global_variables())
        return sess.run(logits, {batch: images}), names, [op.name for op in updates]


def test_towers_share_the_variables_and_normalise_their_own_images():
    cfg = dict(config.DEFAULTS, width=0.25, dropout_keep_prob=1.0)
    images = np.random.RandomState(0).uniform(0, 255, (6, 32, 32, 3)).astype(np.float32)
    one, names, updates = _tower_logits(cfg, images, False, towers=1)
    # Inference: any split of any batch (3 towers of 2; 4 or 8 after blank images are added)
    # gives the same logits.
    for towers in (3, 4, 8):
        split, split_names, _ = _tower_logits(cfg, images, False, towers)
        assert split_names == names
        np.testing.assert_allclose(split, one, atol=1e-5)
    # Training: batch norm uses each tower's own statistics (slim's clones); the moving
    # statistics are updated once a step, from the first tower.
    halves, _, tower_updates = _tower_logits(cfg, images, True, towers=2)
    first, _, _ = _tower_logits(cfg, images[:3], True, towers=1)
    second, _, _ = _tower_logits(cfg, images[3:], True, towers=1)
    np.testing.assert_allclose(halves, np.concatenate([first, second]), atol=1e-4)
    whole, _, updates = _tower_logits(cfg, images, True, towers=1)
    assert np.abs(halves - whole).max() > 1e-3
    assert tower_updates == updates


def test_towers_train_one_set_of_variables_under_slims_names(capsys, tiny_cifar, tmp_path):
    code, _, err = run(capsys, tiny_cifar, tmp_path / 'one', '--preset', 'seed', '--epochs', '1',
                       '--steps_per_epoch', '1')
    assert code == 0, err
    # Two towers of 8 images (batch norm over 8 at width 0.25) learn, if more slowly than one;
    # the 40 test images go in batches of 13, 13, 13 and 1: each gets a blank image to split.
    code, _, err = run(capsys, tiny_cifar, tmp_path / 'two', '--preset', 'seed', '--epochs', '8',
                       '--steps_per_epoch', '10', '--lr', '3e-3', '--towers', '2',
                       '--eval_batch_size', '13', '--ema_decay', '0.9', '--eval_flip_tta', '1')
    assert code == 0, err
    records = metrics(tmp_path / 'two')
    assert records[-1]['train_loss'] < 0.7 * records[0]['train_loss']
    assert records[-1]['test_accuracy'] >= 0.4  # chance is 0.1
    assert 0 <= records[-1]['test_accuracy_tta'] <= 1
    names = [set(tf.train.load_checkpoint(str(tmp_path / run_dir)).get_variable_to_shape_map())
             for run_dir in ('one', 'two')]
    model = {n for n in names[1] if n.startswith('MobilenetV1/') and 'ExponentialMovingAverage' not in n}
    assert model == {n for n in names[0] if n.startswith('MobilenetV1/')}
    assert not any(n.startswith('MobilenetV1_') for n in names[1])
    # A run may go on with another tower count; it says so.
    code, out, err = run(capsys, tiny_cifar, tmp_path / 'two', '--preset', 'seed', '--epochs', '9',
                         '--steps_per_epoch', '10', '--lr', '3e-3', '--eval_batch_size', '13',
                         '--ema_decay', '0.9', '--eval_flip_tta', '1')
    assert code == 0, err
    assert 'Note: --towers 1 (was 2): batch norm normalises groups of 16 images' in '\n'.join(out)
    assert metrics(tmp_path / 'two')[-1]['epoch'] == 9


def test_towers_share_out_the_cores_and_run_side_by_side():
    cores = cpu_kernels.usable_cores()
    session = optimization.session_config(dict(config.DEFAULTS, towers=2))
    assert session.intra_op_parallelism_threads == max(1, cores // 2)
    assert session.inter_op_parallelism_threads == 2
    default = optimization.session_config(dict(config.DEFAULTS, towers=1))
    assert (default.intra_op_parallelism_threads, default.inter_op_parallelism_threads) == (0, 0)
