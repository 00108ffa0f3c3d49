"""Fault injection: damaged checkpoints and runs killed at the wrong moment.

One run of two epochs (checkpoints at steps 2 and 4) is trained once; each case copies it,
damages the copy as the row says, and runs a script on it: the expected exit code, the
checkpoint used, the file the message names and what is still there afterwards.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from checkpoints import reading
from checkpoints import run_files
import evaluate
import export_weights
import freeze_graph
import predict
import train

RUN = ['--width', '0.25', '--batch_size', '16', '--batch_norm_decay', '0.8',
       '--eval_batch_size', '16', '--epochs', '2', '--steps_per_epoch', '2']


@pytest.fixture(scope='module')
def trained(tiny_cifar, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp('faults') / 'run'
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(ckpt)]) == 0
    assert sorted(p for p in os.listdir(ckpt) if p.endswith('.index')) == [
        'model.ckpt-2.index', 'model.ckpt-4.index']
    return ckpt


def newest(run, suffix):
    return run / ('model.ckpt-4' + suffix)


def truncate_data(run):
    data = newest(run, '.data-00000-of-00001')
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])


def empty_data(run):
    newest(run, '.data-00000-of-00001').write_bytes(b'')


def random_index(run):
    newest(run, '.index').write_bytes(np.random.RandomState(0).bytes(4096))


def binary_checkpoint_file(run):
    (run / 'checkpoint').write_bytes(np.random.RandomState(1).bytes(300))


def text_checkpoint_file(run):
    (run / 'checkpoint').write_text('model_checkpoint_path: this is not { a checkpoint state\n')


def newest_files_deleted(run):
    for suffix in ('.index', '.data-00000-of-00001'):
        newest(run, suffix).unlink()


# damage, the step of the checkpoint every reader must then use, the file the note names
DAMAGES = [
    (truncate_data, 2, 'model.ckpt-4'),
    (empty_data, 2, 'model.ckpt-4'),
    (random_index, 2, 'model.ckpt-4'),
    (binary_checkpoint_file, 4, None),
    (text_checkpoint_file, 4, None),
    (newest_files_deleted, 2, None),
]


def damaged_copy(trained, tmp_path, damage):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    damage(run)
    return run


def a_photo(tmp_path):
    path = tmp_path / 'photo.png'
    Image.fromarray(np.random.RandomState(2).randint(0, 256, (40, 50, 3), np.uint8)).save(path)
    return str(path)


def check_note(err, run, names):
    if names:
        assert 'note: %s is damaged (' % (run / names) in err, err
        assert 'using %s' % (run / 'model.ckpt-2') in err


@pytest.mark.parametrize('damage,step,names', DAMAGES, ids=[d[0].__name__ for d in DAMAGES])
def test_resume_takes_the_newest_intact_checkpoint(capsys, tiny_cifar, trained, tmp_path, damage,
                                                   step, names):
    run = damaged_copy(trained, tmp_path, damage)
    kept = sorted(os.listdir(run))
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]) == 0
    out, err = capsys.readouterr()
    check_note(err, run, names)
    assert 'Resuming from %s' % (run / ('model.ckpt-%d' % step)) in out
    # Resumed at the end of epoch 1, the run does epoch 2 again: each epoch once in the metrics.
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['epoch'], r['step']) for r in records] == [(1, 2), (2, 4)]
    assert reading.newest_intact(str(run), say=False)[0] == str(run / 'model.ckpt-4')
    if damage is newest_files_deleted:
        return
    # Nothing of the damaged checkpoint was deleted, though epoch 2's save replaced it.
    assert set(kept) - {'checkpoint'} <= set(os.listdir(run))


@pytest.mark.parametrize('damage,step,names', DAMAGES, ids=[d[0].__name__ for d in DAMAGES])
def test_freeze_takes_the_newest_intact_checkpoint(capsys, trained, tmp_path, damage, step, names):
    run = damaged_copy(trained, tmp_path, damage)
    assert freeze_graph.main(['--ckpt', str(run), '--output', str(tmp_path / 'f' / 'm.pb'),
                              '--tflite', 'none']) == 0
    out, err = capsys.readouterr()
    check_note(err, run, names)
    assert json.loads(out.strip().splitlines()[-1])['checkpoint'] == str(
        run / ('model.ckpt-%d' % step))


@pytest.mark.parametrize('script', ['evaluate', 'predict', 'export_weights'])
def test_every_reader_takes_the_newest_intact_checkpoint(capsys, tiny_cifar, trained, tmp_path,
                                                         script):
    run = damaged_copy(trained, tmp_path, truncate_data)
    argv = {'evaluate': [str(run), '--data_dir', str(tiny_cifar)],
            'predict': [str(run), a_photo(tmp_path)],
            'export_weights': [str(run), str(tmp_path / 'export')]}[script]
    main = {'evaluate': evaluate.main, 'predict': predict.main,
            'export_weights': export_weights.main}[script]
    assert main(argv) == 0
    _, err = capsys.readouterr()
    check_note(err, run, 'model.ckpt-4')
    assert newest(run, '.data-00000-of-00001').stat().st_size > 0  # left as it was
    if script == 'export_weights':
        exported = tf.train.load_checkpoint(str(tmp_path / 'export' / 'model.ckpt'))
        original = tf.train.load_checkpoint(str(run / 'model.ckpt-2'))
        name = 'MobilenetV1/Conv2d_0/weights'
        np.testing.assert_array_equal(exported.get_tensor(name), original.get_tensor(name))


def test_every_checkpoint_damaged_is_one_line_naming_them(capsys, trained, tmp_path):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    for step in (2, 4):
        (run / ('model.ckpt-%d.data-00000-of-00001' % step)).write_bytes(b'')
    assert freeze_graph.main(['--ckpt', str(run), '--output', str(tmp_path / 'f' / 'm.pb')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        'freeze_graph.py: error: %s: every checkpoint is damaged (model.ckpt-4: ' % run)
    assert 'model.ckpt-2: ' in err[0] and not (tmp_path / 'f').exists()


def without_checkpoints(trained, tmp_path):
    """The run folder as a kill just before (or during) its first save leaves it: config.json
    and epoch 1's metrics line, no checkpoint."""
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    for name in os.listdir(run):
        if name.startswith(('model.ckpt', 'checkpoint', 'best')):
            path = run / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    lines = (run / 'metrics.jsonl').read_text().splitlines()
    (run / 'metrics.jsonl').write_text(lines[0] + '\n')
    return run


@pytest.mark.parametrize('moment', ['before the first save', 'during the first save'])
def test_a_run_killed_before_its_first_checkpoint_starts_again(capsys, tiny_cifar, trained,
                                                               tmp_path, moment):
    run = without_checkpoints(trained, tmp_path)
    if moment == 'during the first save':
        # The data still in TensorFlow's temporary file, an index written halfway.
        data = (trained / 'model.ckpt-2.data-00000-of-00001').read_bytes()
        (run / 'model.ckpt-2.data-00000-of-00001.tempstate123').write_bytes(data[:len(data) // 3])
        (run / 'model.ckpt-2.index').write_bytes((trained / 'model.ckpt-2.index').read_bytes()[:50])
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]) == 0
    out, err = capsys.readouterr()
    assert 'holds no intact checkpoint of this run' in out and 'starting it again' in out
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['epoch'], r['step']) for r in records] == [(1, 2), (2, 4)]
    assert not [name for name in os.listdir(run) if 'tempstate' in name]


def test_a_folder_of_another_run_without_checkpoints_is_still_refused(capsys, tiny_cifar, trained,
                                                                       tmp_path):
    run = without_checkpoints(trained, tmp_path)
    assert train.main(RUN[:1] + ['0.5'] + RUN[2:] + ['--data_dir', str(tiny_cifar),
                                                     '--ckpt_dir', str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('train.py: error: --width 0.5 differs from the run')
    (run / 'config.json').unlink()
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]) == 2
    assert 'a metrics.jsonl and no checkpoint' in capsys.readouterr().err


def a_metrics_file(tmp_path, *records):
    path = tmp_path / 'run' / 'metrics.jsonl'
    path.parent.mkdir(exist_ok=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return str(path)


@pytest.mark.parametrize('value', [None, 'high', [0.5], True])
def test_plot_runs_names_a_value_of_the_wrong_type(capsys, tmp_path, value):
    import plot_runs
    path = a_metrics_file(tmp_path, dict(epoch=1, wall_seconds=60.0, test_accuracy=0.4),
                          dict(epoch=2, wall_seconds=120.0, test_accuracy=value))
    assert plot_runs.main([path, '-o', str(tmp_path / 'p.png')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['plot_runs.py: error: %s: line 2: test_accuracy is %s, not a number'
                   % (path, json.dumps(value))]
    assert not (tmp_path / 'p.png').exists()


def test_plot_runs_shows_a_run_below_50_percent(tmp_path, monkeypatch):
    import matplotlib.figure
    import plot_runs
    limits = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', lambda self, *a, **k: limits.append(
        self.axes[0].get_ylim()) or real(self, *a, **k))
    path = a_metrics_file(tmp_path, dict(epoch=1, wall_seconds=60.0, test_accuracy=0.18),
                          dict(epoch=2, wall_seconds=120.0, test_accuracy=0.31))
    assert plot_runs.main([path, '-o', str(tmp_path / 'p.png')]) == 0
    bottom, top = limits[-1]
    assert bottom <= 18 and top >= 31  # both points inside the axes


def test_a_cifar_folder_missing_one_file_names_it(capsys, tiny_cifar, tmp_path, monkeypatch):
    partial = tmp_path / 'cifar'
    shutil.copytree(tiny_cifar, partial)
    (partial / 'test_batch').unlink()
    import data_utils
    # No network: a download from an address that refuses at once.
    monkeypatch.setattr(data_utils.ensure_cifar10, '__defaults__', (
        None, 'http://127.0.0.1:9/cifar-10-python.tar.gz', data_utils.CIFAR10_MD5))
    assert train.main(RUN + ['--data_dir', str(partial), '--ckpt_dir', str(tmp_path / 'c')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        'train.py: error: %s: CIFAR-10 file(s) test_batch missing (the others are there), and '
        'fetching them again failed: ' % partial), err


def test_export_into_the_run_it_exports_is_refused(capsys, trained, tmp_path):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    before = {name: (run / name).read_bytes() for name in os.listdir(run) if (run / name).is_file()}
    assert export_weights.main([str(run), str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['export_weights.py: error: %s: is the folder of the run exported; name another '
                   'folder to write' % run]
    assert {name: (run / name).read_bytes() for name in before} == before


def test_a_freeze_whose_rename_fails_part_way_puts_the_earlier_files_back(capsys, trained,
                                                                          tmp_path, monkeypatch):
    out = tmp_path / 'frozen' / 'm.pb'
    assert freeze_graph.main(['--ckpt', str(trained / 'model.ckpt-2'), '--output', str(out),
                              '--tflite', 'float32']) == 0
    earlier = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    real = os.replace
    renames = []

    def failing_replace(source, target):
        if source.endswith('.tmp'):
            renames.append(target)
            if len(renames) == 3:  # the .pb and its .json are in place by now
                raise OSError(28, 'No space left on device', target)
        return real(source, target)

    monkeypatch.setattr(os, 'replace', failing_replace)
    assert freeze_graph.main(['--ckpt', str(trained), '--output', str(out),
                              '--tflite', 'float32']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'No space left on device' in err[0] and len(renames) == 3
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == earlier


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_cifar_batches_pickled_by_current_numpy_read_the_same(tmp_path, protocol):
    import pickle
    import data_utils
    rng = np.random.RandomState(3)
    data = rng.randint(0, 256, (4, 3072)).astype(np.uint8)
    labels = rng.randint(0, 10, 4)
    reference = tmp_path / 'reference'
    reference.write_bytes(pickle.dumps({b'data': data, b'labels': [int(x) for x in labels]}, 2))
    expected = data_utils.load_batch(str(reference))
    for name, batch in (('str keys, numpy labels', {'data': data, 'labels': list(labels)}),
                        ('array labels', {'data': data, 'labels': labels}),
                        ('fortran order', {'data': np.asfortranarray(data), 'labels': labels})):
        path = tmp_path / name.replace(' ', '_')
        path.write_bytes(pickle.dumps(batch, protocol))
        images, read_labels = data_utils.load_batch(str(path))
        np.testing.assert_array_equal(images, expected[0], err_msg=name)
        np.testing.assert_array_equal(read_labels, expected[1], err_msg=name)


@pytest.mark.parametrize('what', ['checkpoint', 'metrics line', 'config.json'])
def test_a_full_disk_is_one_line_and_the_same_command_resumes(capsys, tiny_cifar, tmp_path,
                                                              monkeypatch, what):
    from training import trainer
    run = tmp_path / 'run'
    full = OSError(28, 'No space left on device')
    if what == 'checkpoint':
        real_save = tf.compat.v1.train.Saver.save
        saves = []

        def save(self, sess, prefix, **kwargs):
            if prefix == str(run / 'model.ckpt'):
                saves.append(prefix)
                if len(saves) == 2:  # epoch 2's checkpoint
                    raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
            return real_save(self, sess, prefix, **kwargs)
        monkeypatch.setattr(tf.compat.v1.train.Saver, 'save', save)
        named = run / 'model.ckpt'
    elif what == 'metrics line':
        real_dumps = json.dumps
        lines = []

        def dumps(obj, *args, **kwargs):
            if isinstance(obj, dict) and obj.get('epoch') == 2 and 'train_loss' in obj:
                lines.append(obj)
                raise full
            return real_dumps(obj, *args, **kwargs)
        monkeypatch.setattr(trainer.json, 'dumps', dumps)
        named = run / 'metrics.jsonl'
    else:
        def dump(*args, **kwargs):
            raise full
        monkeypatch.setattr(trainer.json, 'dump', dump)
        named = run / 'config.json'
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if line.strip() and not line.startswith('epoch ')]  # not the progress bar's
    assert len(err) == 1 and err[0].startswith('train.py: error: %s: cannot write (No space left '
                                               'on device); ' % named), err
    # Refused before its first write (config.json), the run leaves no folder it made.
    assert not run.exists() or not [p for p in os.listdir(run) if p.endswith('.tmp')]
    monkeypatch.undo()
    assert train.main(RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]) == 0
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['epoch'], r['step']) for r in records] == [(1, 2), (2, 4)]


def a_tflite(path, input_shape, classes):
    """A valid TFLite model that is not this project's: a mean over pixels, then `classes`."""
    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32)])
    def model(images):
        axes = [1, 2, 3][:len(input_shape) - 1]
        pooled = tf.reduce_mean(images, axis=axes, keepdims=False)
        return tf.nn.softmax(tf.reshape(pooled, [-1, 1]) * tf.ones([1, classes]))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()],
                                                                model)
    path.write_bytes(converter.convert())
    return str(path)


def test_a_tflite_model_of_another_size_and_class_count(capsys, tiny_cifar, tmp_path):
    other = a_tflite(tmp_path / 'other.tflite', [1, 64, 64, 3], 5)
    # A float model of no .json and no TFLite metadata: the flag says how it takes pixels.
    assert predict.main([other, a_photo(tmp_path), '--normalization', 'inception']) == 0
    top = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]['top_k']
    assert {t['label'] for t in top} <= {'class_%d' % i for i in range(5)}
    assert evaluate.main([other, '--data_dir', str(tiny_cifar), '--normalization',
                          'inception']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['evaluate.py: error: %s has 5 classes, CIFAR-10 10: score it on the data it '
                   'was trained for (--dataset, --data_dir)' % other]


def test_a_tflite_model_that_takes_no_image_batch_is_one_line(capsys, tmp_path):
    nchw = a_tflite(tmp_path / 'nchw.tflite', [1, 3, 32, 32], 10)
    for main, script in ((predict.main, 'predict.py'), (evaluate.main, 'evaluate.py')):
        assert main([nchw] + ([a_photo(tmp_path)] if script == 'predict.py' else [])) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('%s: error: %s: takes [1, 3, 32, 32] and gives '
                                                   % (script, nchw)), err


# A real SIGKILL at a chosen moment of epoch 2: the process dies as an OOM kill or power loss
# leaves it, without the interrupt's save.
KILL = '''
import os, signal, sys
import tensorflow as tf
import train
from training import train_graph
moment, argv = sys.argv[1], sys.argv[2:]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if moment == 'mid-evaluation':
    real_score, scores = train_graph.score, []
    def score(*args, **kwargs):
        scores.append(1)
        if len(scores) == 2:
            die()
        return real_score(*args, **kwargs)
    train_graph.score = score
else:
    real_save, saves = tf.compat.v1.train.Saver.save, []
    def save(self, sess, prefix, **kwargs):
        if prefix.endswith(os.sep + 'run' + os.sep + 'model.ckpt'):
            saves.append(1)
            if len(saves) == 2:
                if moment == 'before the save':
                    die()
                path = real_save(self, sess, prefix, **kwargs)
                data = path + '.data-00000-of-00001'  # the data cut short, as a lost write leaves it
                os.truncate(data, os.path.getsize(data) // 2)
                die()
        return real_save(self, sess, prefix, **kwargs)
    tf.compat.v1.train.Saver.save = save
sys.exit(train.main(argv))
'''


@pytest.mark.parametrize('moment', ['mid-evaluation', 'before the save', 'mid-save'])
def test_a_sigkill_loses_only_the_epoch_it_was_in(capsys, tiny_cifar, tmp_path, moment):
    import subprocess
    import sys
    run = tmp_path / 'run'
    argv = RUN[:-4] + ['--epochs', '3', '--steps_per_epoch', '2', '--data_dir', str(tiny_cifar),
                       '--ckpt_dir', str(run)]
    killed = subprocess.run([sys.executable, '-c', KILL, moment] + argv, capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert killed.returncode == -9, killed.stderr[-2000:]
    epochs_seen = len((run / 'metrics.jsonl').read_text().splitlines())
    assert epochs_seen == (1 if moment == 'mid-evaluation' else 2)
    assert train.main(argv) == 0
    out, err = capsys.readouterr()
    assert 'Resuming from %s' % (run / 'model.ckpt-2') in out
    if moment == 'mid-save':
        assert 'note: %s is damaged (' % (run / 'model.ckpt-4') in err
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['epoch'], r['step']) for r in records] == [(1, 2), (2, 4), (3, 6)]
    assert reading.newest_intact(str(run), say=False)[0] == str(run / 'model.ckpt-6')


def moved(trained, tmp_path):
    run = tmp_path / 'elsewhere' / 'run'
    shutil.copytree(trained, tmp_path / 'original')
    (tmp_path / 'elsewhere').mkdir()
    os.rename(tmp_path / 'original', run)
    return run, None


def copied(trained, tmp_path):
    original = tmp_path / 'original'
    shutil.copytree(trained, original)
    # The index names the original's files by absolute path, as a Saver without
    # save_relative_paths (slim's, this repository's before) writes it.
    (original / 'checkpoint').write_text(''.join(
        '%s: "%s"\n' % (key, original / name) for key, name in (
            ('model_checkpoint_path', 'model.ckpt-4'), ('all_model_checkpoint_paths', 'model.ckpt-2'),
            ('all_model_checkpoint_paths', 'model.ckpt-4'))))
    shutil.copytree(original, tmp_path / 'copy')
    return tmp_path / 'copy', original


@pytest.mark.parametrize('where', [moved, copied])
def test_a_run_moved_or_copied_resumes_where_it_is(capsys, tiny_cifar, trained, tmp_path, where):
    run, original = where(trained, tmp_path)
    before = sorted(os.listdir(original)) if original else None
    argv = RUN[:-4] + ['--epochs', '3', '--steps_per_epoch', '2', '--data_dir', str(tiny_cifar),
                       '--ckpt_dir', str(run), '--keep_checkpoints', '2']
    assert train.main(argv) == 0
    assert 'Resuming from %s' % (run / 'model.ckpt-4') in capsys.readouterr().out
    assert sorted(p for p in os.listdir(run) if p.endswith('.index')) == [
        'model.ckpt-4.index', 'model.ckpt-6.index']
    if original:  # the copy's saver pruned its own checkpoints, not the original's
        assert sorted(os.listdir(original)) == before
    assert freeze_graph.main(['--ckpt', str(run), '--output', str(tmp_path / 'm.pb'),
                              '--tflite', 'none']) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['checkpoint'] == str(
        run / 'model.ckpt-6')


def test_a_run_without_its_config_json_resumes_and_checks_the_shapes(capsys, tiny_cifar,
                                                                     trained, tmp_path):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    (run / 'config.json').unlink()
    wider = RUN[:1] + ['0.5'] + RUN[2:] + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]
    assert train.main(wider) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        'train.py: error: %s: cannot resume from it (MobilenetV1/Conv2d_0/weights has shape '
        '[3, 3, 3, 8] in the checkpoint, [3, 3, 3, 16] in the model, and ' % (run / 'model.ckpt-4'))
    assert not (run / 'config.json').exists()
    argv = RUN[:-4] + ['--epochs', '3', '--steps_per_epoch', '2', '--data_dir', str(tiny_cifar),
                       '--ckpt_dir', str(run)]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert 'has checkpoints but no config.json: resuming with this command\'s flags' in out
    assert run_files.load_config(str(run / 'config.json'))['epochs'] == 3


def with_config(run, value):
    if isinstance(value, dict):
        value = dict(json.loads((run / 'config.json').read_text()), **value)
    (run / 'config.json').write_text(json.dumps(value))


HAND_EDITS = [([], 'holds a JSON list, not the object of settings train.py writes'),
              ({'width': 'wide'}, 'width is "wide", not a number'),
              ({'epochs': 2.5}, 'epochs is 2.5, not a whole number'),
              ({'label_names': [1, 2]}, 'label_names is [1, 2], not a list of class names')]


@pytest.mark.parametrize('script', ['train', 'freeze_graph', 'evaluate', 'predict',
                                    'export_weights'])
@pytest.mark.parametrize('value,says', HAND_EDITS, ids=['list', 'str', 'float', 'labels'])
def test_a_hand_edited_config_json_of_the_wrong_type_is_one_line(capsys, tiny_cifar, trained,
                                                                 tmp_path, script, value, says):
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    with_config(run, value)
    argv = {'train': RUN + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)],
            'freeze_graph': ['--ckpt', str(run), '--output', str(tmp_path / 'f' / 'm.pb')],
            'evaluate': [str(run), '--data_dir', str(tiny_cifar)],
            'predict': [str(run), a_photo(tmp_path)],
            'export_weights': [str(run), str(tmp_path / 'export')]}[script]
    main = {'train': train.main, 'freeze_graph': freeze_graph.main, 'evaluate': evaluate.main,
            'predict': predict.main, 'export_weights': export_weights.main}[script]
    before = sorted(os.listdir(run))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('%s.py: error: ' % script), err
    assert '%s: %s' % (run / 'config.json', says) in err[0]
    assert sorted(os.listdir(run)) == before
    assert not (tmp_path / 'f').exists() and not (tmp_path / 'export').exists()


def test_benchmark_names_a_damaged_cifar_batch(capsys, tiny_cifar, tmp_path):
    import benchmark
    data = tmp_path / 'cifar'
    shutil.copytree(tiny_cifar, data)
    batch = data / 'data_batch_3'
    batch.write_bytes(batch.read_bytes()[:500])
    assert benchmark.main(['--width', '0.25', '--batch_size', '16', '--steps', '1', '--warmup',
                           '1', '--repeats', '1', '--latency_runs', '1', '--matmul_size', '64',
                           '--matmul_iters', '1', '--skip_keras', '--skip_torch',
                           '--data_dir', str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('benchmark.py: error: %s: cannot unpickle (' % batch), err


def test_an_export_onto_a_full_disk_leaves_the_earlier_export_whole(capsys, trained, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / 'export'
    assert export_weights.main([str(trained / 'model.ckpt-2'), str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    def copyfile(source, target):
        raise OSError(28, 'No space left on device', target)
    monkeypatch.setattr(shutil, 'copyfile', copyfile)
    capsys.readouterr()
    assert export_weights.main([str(trained), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('export_weights.py: error: %s' % out), err
    assert err[0].endswith(': No space left on device')
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_a_second_training_in_the_same_folder_is_refused(capsys, tiny_cifar, trained, tmp_path):
    import fcntl
    run = tmp_path / 'run'
    shutil.copytree(trained, run)
    before = {name: (run / name).read_bytes() for name in os.listdir(run)
              if name not in ('best', 'train.lock')}
    argv = RUN[:-4] + ['--epochs', '3', '--steps_per_epoch', '2', '--data_dir', str(tiny_cifar),
                       '--ckpt_dir', str(run)]
    with open(run / 'train.lock', 'a+') as held:  # as the first training holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate(0)
        held.write('4242\n')
        held.flush()
        assert train.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ['train.py: error: --ckpt_dir %s is in use by another training (process '
                       '4242); wait for it to end, or use another --ckpt_dir' % run]
        assert {name: (run / name).read_bytes() for name in before} == before
    assert train.main(argv) == 0  # the lock goes with the process that held it
    assert (run / 'train.lock').read_text() == '%d\n' % os.getpid()
