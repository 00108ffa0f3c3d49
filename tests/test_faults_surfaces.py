"""Fault injection on the newer surfaces: folder and TFRecord datasets, conversion, runs read
back by other programs, foreign models. Each row damages something as a user would and says
what the program must answer: one line naming the file or flag, the exit code, nothing
half-written.
"""
import json
import os
import re
import signal

import pytest

from conftest import own_images
import convert_to_tfrecord
import evaluate
import export_weights
import freeze_graph
import plot_runs
import predict
from preflight import cluster
from preflight import errors
from preflight import files
import train

from test_datasets import write_slim_shards

TINY = ['--width', '0.25', '--batch_size', '4', '--eval_batch_size', '8', '--epochs', '1',
        '--steps_per_epoch', '1']


def last_error(capsys):
    """The one line a program printed on stderr for its error."""
    lines = [line for line in capsys.readouterr().err.splitlines() if ': error: ' in line]
    assert len(lines) == 1, lines
    return lines[0]


# labels.txt as written, the words the one-line error must hold
LABELS = [
    ('0:pants\n1:shoes\n1:socks\n', 'line 3 gives label 1 a second name (socks, after shoes)'),
    ('0:pants\n1:shoes\n2:pants\n', 'line 3 names a second label pants (label 0 is pants'),
    (b'0:caf\xe9\n1:bar\n', 'not UTF-8 text (byte 0xe9 at offset 5)'),
]


@pytest.mark.parametrize('text,message', LABELS)
def test_a_labels_file_that_renames_classes_is_refused(capsys, tmp_path, text, message):
    data = tmp_path / 'records'
    data.mkdir()
    write_slim_shards(data, ['a', 'b', 'c'], 4, 1, 'train')
    labels = data / 'labels.txt'
    labels.write_bytes(text) if isinstance(text, bytes) else labels.write_text(text)
    code = train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(data),
                              '--ckpt_dir', str(tmp_path / 'run')])
    assert code == 2
    line = last_error(capsys)
    assert str(labels) in line and message in line
    assert not (tmp_path / 'run').exists()


@pytest.fixture(scope='module')
def folder_run(tmp_path_factory):
    """A run trained on a folder dataset of three classes, 6 images held out as its test split."""
    root = tmp_path_factory.mktemp('folder_run')
    photos = own_images(root / 'photos')
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--test_size',
                              '6', '--ckpt_dir', str(root / 'run')]) == 0
    return root / 'run', photos


def test_evaluate_scores_a_run_on_its_own_data_and_splits(capsys, folder_run):
    run, photos = folder_run
    capsys.readouterr()
    assert evaluate.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "Data: --dataset folder --data_dir %s --test_size 6, the run's" % photos in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result['dataset'] == 'folder' and result['split'] == 'test'
    assert [row['label'] for row in result['per_class']] == ['cat', 'dog', 'eel']
    # own_images' broken.jpg is among the 6 held out: counted and named, not silently dropped.
    assert result['num_images'] == 5 and result['skipped_images'] == 1
    assert result['skipped_files'] == [str(photos / 'dog' / 'broken.jpg')]
    assert 'on 5 of the 6 test images' in out
    assert 'Skipped 1 image(s) that do not decode: %s (' % (photos / 'dog' / 'broken.jpg') in out


def test_evaluate_refuses_other_classes_before_scoring(capsys, tiny_cifar, folder_run):
    run, _ = folder_run
    capsys.readouterr()
    assert evaluate.main([str(run), '--dataset', 'cifar10', '--data_dir', str(tiny_cifar)]) == 2
    out, err = capsys.readouterr()
    assert 'top-1' not in out and len(err.strip().splitlines()) == 1
    assert 'has 3 classes, CIFAR-10 10' in err


@pytest.mark.parametrize('value,shown', [('NaN', 'NaN'), ('Infinity', 'Infinity'),
                                         ('-Infinity', '-Infinity')])
def test_plot_runs_refuses_a_metrics_line_that_is_not_a_finite_number(capsys, tmp_path, value,
                                                                      shown):
    metrics = tmp_path / 'run' / 'metrics.jsonl'
    metrics.parent.mkdir()
    metrics.write_text('{"epoch": 1, "test_accuracy": 0.5, "wall_seconds": 60}\n'
                       '{"epoch": 2, "test_accuracy": %s, "wall_seconds": 120}\n' % value)
    output = tmp_path / 'plot.png'
    assert plot_runs.main([str(metrics), '-o', str(output)]) == 2
    line = last_error(capsys)
    assert str(metrics) in line and 'line 2: test_accuracy is %s, not a finite number' % shown in line
    assert not output.exists()


def test_plot_runs_names_a_damaged_line_and_skips_only_a_last_one_cut_short(capsys, tmp_path):
    metrics = tmp_path / 'run' / 'metrics.jsonl'
    metrics.parent.mkdir()
    lines = ['{"epoch": %d, "test_accuracy": 0.5, "wall_seconds": %d}' % (e, 60 * e)
             for e in (1, 2, 3)]
    output = tmp_path / 'plot.png'
    metrics.write_text('\n'.join(lines[:2]) + '\n' + lines[2][:20])  # killed mid-write
    assert plot_runs.main([str(metrics), '-o', str(output)]) == 0 and output.exists()
    output.unlink()
    metrics.write_text('\n'.join([lines[0], lines[1][:20], lines[2]]) + '\n')
    assert plot_runs.main([str(metrics), '-o', str(output)]) == 2
    line = last_error(capsys)
    assert str(metrics) in line and 'line 2 is not a JSON metrics record' in line
    assert not output.exists()


@pytest.mark.parametrize('workers', [['127.0.0.1:%d', 'localhost:%d'], ['localhost:%d', '[::1]:%d']])
def test_one_worker_listed_twice_under_two_names_is_refused(capsys, monkeypatch, tmp_path,
                                                            workers):
    addresses = [w % 23456 for w in workers]
    monkeypatch.setenv('TF_CONFIG', json.dumps({'cluster': {'worker': addresses},
                                                'task': {'type': 'worker', 'index': 0}}))
    with pytest.raises(errors.UsageError, match='lists one worker twice: %s and %s are the same '
                                                'machine and port' % tuple(map(re.escape,
                                                                               addresses))):
        cluster.from_environment(os.environ)
    assert train.main(TINY + ['--ckpt_dir', str(tmp_path / 'run')]) == 2
    assert 'lists one worker twice' in last_error(capsys)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('name,scope,inside', [
    ('MobilenetV1/Conv2d_1_depthwise/depthwise_weights', 'MobilenetV1/Conv2d_1', True),
    ('MobilenetV1/Conv2d_1_pointwise/weights', 'MobilenetV1/Conv2d_1', True),
    ('MobilenetV1/Conv2d_10_pointwise/weights', 'MobilenetV1/Conv2d_1', False),
    ('MobilenetV1/Conv2d_13_depthwise/BatchNorm/beta', 'MobilenetV1/Conv2d_1', False),
    ('MobilenetV1/Logits/Conv2d_1c_1x1/weights', 'MobilenetV1/Logits', True),
    ('MobilenetV1/Logits/Conv2d_1c_1x1/weights', 'MobilenetV1/Logi', False),
    ('MobilenetV1/Conv2d_10_pointwise/weights', 'MobilenetV1/Conv2d_10_pointwise/', True),
])
def test_a_scope_matches_whole_parts_of_names(name, scope, inside):
    import mobilenet
    assert mobilenet.in_scopes(name, [scope]) is inside


def pretrain(tmp_path, folder_run, *flags):
    run, photos = folder_run
    return train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--ckpt_dir',
                              str(tmp_path / 'new'), '--load_pretrain', '1', *flags])


def test_excluding_every_layer_from_the_pretrained_weights_says_so(capsys, tmp_path, folder_run):
    assert pretrain(tmp_path, folder_run, '--pretrain_path', str(folder_run[0]),
                    '--checkpoint_exclude_scopes', 'MobilenetV1') == 2
    assert ('--checkpoint_exclude_scopes MobilenetV1 leaves no variable to restore'
            in last_error(capsys))
    assert not (tmp_path / 'new').exists()


def test_pretrained_weights_of_another_width_name_the_shapes(capsys, tmp_path, folder_run):
    assert pretrain(tmp_path, folder_run, '--pretrain_path', str(folder_run[0]),
                    '--width', '0.5') == 2
    line = last_error(capsys)
    assert 'variables matched by name but not by shape (MobilenetV1/' in line
    assert 'a model of another --width or --min_depth' in line


def test_a_missing_pretrain_path_is_refused_before_the_data_loads(capsys, tmp_path, folder_run):
    missing = tmp_path / 'nothing' / 'model.ckpt-5'
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(tmp_path / 'no_data'),
                              '--ckpt_dir', str(tmp_path / 'new'), '--load_pretrain', '1',
                              '--pretrain_path', str(missing)]) == 2
    line = last_error(capsys)
    assert '--pretrain_path %s: no such checkpoint' % missing in line and 'no_data' not in line


def test_a_prefix_cut_short_or_a_frozen_graph_is_named(capsys, tmp_path, folder_run):
    run, _ = folder_run
    newest = sorted(p.name for p in run.glob('model.ckpt-*.index'))[-1][:-len('.index')]
    assert pretrain(tmp_path, folder_run, '--pretrain_path', str(run / 'model')) == 2
    assert 'did you mean %s?' % (run / newest) in last_error(capsys)
    frozen = tmp_path / 'frozen.pb'
    frozen.write_bytes(b'\x0a\x00')
    assert pretrain(tmp_path, folder_run, '--pretrain_path', str(frozen)) == 2
    assert '%s: a frozen model, not a checkpoint' % frozen in last_error(capsys)


def test_freezing_onto_a_folder_writes_nothing(capsys, tmp_path, folder_run):
    output = tmp_path / 'frozen' / 'model.pb'
    (output / 'keep.txt').parent.mkdir(parents=True)
    (output / 'keep.txt').write_text('mine')
    assert freeze_graph.main(['--ckpt', str(folder_run[0]), '--output', str(output),
                              '--tflite', 'none']) == 2
    assert '--output %s is a folder' % output in last_error(capsys)
    assert sorted(os.listdir(tmp_path / 'frozen')) == ['model.pb']
    assert (output / 'keep.txt').read_text() == 'mine'


def test_an_output_under_a_file_is_refused_before_any_work(capsys, tmp_path, folder_run):
    blocker = tmp_path / 'blocker'
    blocker.write_text('mine')
    assert freeze_graph.main(['--ckpt', str(folder_run[0]), '--output',
                              str(blocker / 'm.pb')]) == 2
    assert '%s is a file, not a folder' % blocker in last_error(capsys)
    assert export_weights.main([str(folder_run[0]), str(blocker / 'sub')]) == 2
    assert '%s is a file, not a folder' % blocker in last_error(capsys)
    assert export_weights.main([str(folder_run[0]), str(blocker)]) == 2
    assert '%s is a file, not a folder' % blocker in last_error(capsys)
    assert blocker.read_text() == 'mine'


def test_a_frozen_model_whose_metadata_names_other_classes_is_refused(capsys, tmp_path,
                                                                      folder_run):
    run, photos = folder_run
    frozen = tmp_path / 'frozen' / 'model.pb'
    assert freeze_graph.main(['--ckpt', str(run), '--output', str(frozen), '--tflite',
                              'none']) == 0
    metadata = json.loads(frozen.with_suffix('.json').read_text())
    frozen.with_suffix('.json').write_text(json.dumps(dict(metadata, labels=['a', 'b'])))
    capsys.readouterr()
    assert predict.main([str(frozen), str(sorted((photos / 'cat').glob('*.png'))[0])]) == 2
    assert 'names 2 classes (a, b), the model has 3' in last_error(capsys)


def test_a_decode_error_names_no_in_memory_file():
    from datasets import image_files
    with pytest.raises(errors.ImageError) as raised:
        image_files.to_rgb(b'these bytes are no image')
    # Pillow's words, without the '<_io.BytesIO object at 0x...>' it names in place of the file.
    assert str(raised.value) == 'cannot identify image file'


def test_many_skipped_images_are_summed_up_and_listed_once(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    for i in range(14):
        (photos / 'cat' / ('bad%02d.jpg' % i)).write_bytes(b'no image %d' % i)
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--epochs', '2',
                              '--ckpt_dir', str(run)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith('Skipped ')]
    assert len(lines) == 1 and lines[0].startswith('Skipped 15 image(s) that do not decode')
    assert '; and 5 more, all in %s' % (run / 'skipped_images.txt') in lines[0]
    listed = (run / 'skipped_images.txt').read_text().splitlines()
    assert len(listed) == 15 and all('\t' in line for line in listed)
    first, second = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert first['skipped_images'] == second['skipped_images'] == 15
    assert len(first['skipped_files']) == 15 and second['skipped_files'] == []


def test_images_in_subfolders_count_and_broken_links_are_named(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    nested = photos / 'eel' / 'more' / 'deeper'
    nested.mkdir(parents=True)
    for i, source in enumerate(sorted((photos / 'eel').glob('*'))[:3]):
        (nested / ('copy%d%s' % (i, source.suffix))).write_bytes(source.read_bytes())
    (photos / 'cat' / 'gone.jpg').symlink_to(tmp_path / 'nowhere.jpg')
    (photos / 'cat' / 'loop.jpg').symlink_to(photos / 'cat' / 'loop.jpg')
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos),
                              '--ckpt_dir', str(run)]) == 0
    out = capsys.readouterr().out
    assert '; 3 of the images are in subfolders of class folders, each counted in its class' in out
    skipped = (run / 'skipped_images.txt').read_text()
    assert str(photos / 'cat' / 'gone.jpg') + '\tcannot read it (No such file or directory)' in skipped
    assert str(photos / 'cat' / 'loop.jpg') + '\tcannot read it (Too many levels of symbolic links)' \
        in skipped
    saved = json.loads((run / 'config.json').read_text())
    # 25 files of own_images, 3 copies, 2 links: every one listed, the 3 that do not read skipped.
    assert saved['split_sizes']['train'] == 30 - 3 and saved['nested_images'] == 3


@pytest.mark.parametrize('size', ['32', '40'])
def test_a_training_split_where_no_image_decodes_is_an_error(capsys, tmp_path, size):
    photos = tmp_path / 'photos'
    for name in ('cat', 'dog'):
        (photos / name).mkdir(parents=True)
        for i in range(4):
            (photos / name / ('%d.jpg' % i)).write_bytes(b'not an image %d' % i)
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--image_size',
                              size, '--epochs', '2', '--ckpt_dir', str(run)]) == 2
    line = last_error(capsys)
    assert 'no training image decode' in line
    assert not run.exists()  # nothing trained: no config.json or skipped list of a run left


@pytest.mark.parametrize('size', ['32', '40'])
def test_file_names_that_are_not_utf8_are_read_as_they_are(capsys, tmp_path, size):
    photos = own_images(tmp_path / 'photos')
    for path in sorted((photos / 'dog').glob('[0-3].*')):
        os.rename(path, os.path.join(os.fsencode(path.parent), b'caf\xe9-' + os.fsencode(path.name)))
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--val_size', '4',
                              '--image_size', size, '--ckpt_dir', str(run)]) == 0
    capsys.readouterr()
    # Every image of the training split read again: the corrupt one alone fails.
    assert evaluate.main([str(run), '--split', 'train']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['skipped_files'] == [str(photos / 'dog' / 'broken.jpg')]
    assert result['num_images'] == 25 - 4 - 1


@pytest.mark.parametrize('name,why', [(b'do\xefg', 'is not UTF-8 text'),
                                      (b'two\nlines', 'holds a line break')])
def test_a_class_folder_name_that_labels_txt_cannot_hold_is_named(capsys, tmp_path, name, why):
    photos = own_images(tmp_path / 'photos')
    os.rename(os.fsencode(photos / 'dog'), os.path.join(os.fsencode(photos), name))
    out = tmp_path / 'records'
    assert convert_to_tfrecord.main([str(photos), str(out)]) == 2
    line = last_error(capsys)
    assert ': class folder %s: its name %s' % (ascii(os.fsdecode(name)), why) in line
    assert not out.exists()


def test_a_second_conversion_into_a_dataset_folder_is_refused(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    out = tmp_path / 'records'
    assert convert_to_tfrecord.main([str(photos), str(out), '--name', 'first']) == 0
    before = sorted(os.listdir(out))
    capsys.readouterr()
    assert convert_to_tfrecord.main([str(photos), str(out), '--name', 'second']) == 2
    assert '%s already holds a TFRecord dataset' % out in last_error(capsys)
    assert sorted(os.listdir(out)) == before


def test_two_conversions_racing_into_one_new_folder_leave_one_dataset(capsys, tmp_path,
                                                                      monkeypatch):
    from datasets import tfrecords
    photos = own_images(tmp_path / 'photos')
    out = tmp_path / 'records'
    convert = tfrecords.convert

    def other_finishes_first(data_dir, out_dir, *args):
        # The other conversion publishes while this one is still writing.
        original = tfrecords.image_folder.load_folder

        def load_then_race(*a, **k):
            splits = original(*a, **k)
            monkeypatch.setattr(tfrecords.image_folder, 'load_folder', original)
            assert convert(data_dir, out_dir, 1, 'other')[0]
            return splits
        monkeypatch.setattr(tfrecords.image_folder, 'load_folder', load_then_race)
        return convert(data_dir, out_dir, *args)
    monkeypatch.setattr(tfrecords, 'convert', other_finishes_first)
    assert convert_to_tfrecord.main([str(photos), str(out), '--name', 'mine']) == 2
    assert '%s already holds a TFRecord dataset' % out in last_error(capsys)
    assert not any(name.startswith('mine') for name in os.listdir(out))
    assert not any(name.startswith('.') for name in os.listdir(out))


def test_a_killed_conversions_staging_folder_is_removed_by_the_next(capsys, tmp_path):
    import socket
    photos = own_images(tmp_path / 'photos')
    out = tmp_path / 'records'
    dead = out / ('.records.%d@%s-x1y2' % (2 ** 22 + 12345, socket.gethostname()))
    elsewhere = out / ('.records.%d@another-host-x1y2' % (2 ** 22 + 12345))
    for folder in (dead, elsewhere):
        folder.mkdir(parents=True)
        (folder / 'dataset_train_00000-of-00001.tfrecord').write_bytes(b'\0' * 1000)
    assert convert_to_tfrecord.main([str(photos), str(out)]) == 0
    assert not dead.exists() and elsewhere.exists()


@pytest.mark.parametrize('where', ['file', 'inside'])
def test_an_output_that_is_a_file_or_inside_the_input_is_refused(capsys, tmp_path, where):
    photos = own_images(tmp_path / 'photos')
    out = tmp_path / 'out.tfrecord' if where == 'file' else photos / 'records'
    if where == 'file':
        out.write_text('mine')
    with pytest.raises(SystemExit) as raised:
        convert_to_tfrecord.main([str(photos), str(out)])
    assert raised.value.code == 2
    line = last_error(capsys)
    assert ('is a file' if where == 'file' else 'is inside %s' % photos) in line
    assert (out.read_text() == 'mine') if where == 'file' else not out.exists()


def test_an_image_that_cannot_be_read_is_skipped(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    # A file that cannot be opened, whoever runs the test (root reads a mode-0 file).
    unreadable = photos / 'cat' / 'gone.png'
    unreadable.symlink_to(tmp_path / 'nowhere.png')
    assert convert_to_tfrecord.main([str(photos), str(tmp_path / 'records')]) == 0
    assert 'skipped (cannot be read or does not decode): %s' % unreadable in capsys.readouterr().err


def test_a_full_disk_while_converting_is_one_line(capsys, tmp_path, monkeypatch):
    photos = own_images(tmp_path / 'photos')
    import tensorflow as tf

    class FullDisk:
        def __init__(self, path):
            pass

        def write(self, record):
            raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
    monkeypatch.setattr(tf.io, 'TFRecordWriter', FullDisk)
    assert convert_to_tfrecord.main([str(photos), str(tmp_path / 'more')]) == 2
    assert 'cannot write (No space left on device)' in last_error(capsys)
    assert not (tmp_path / 'more').exists()


def test_a_new_output_folder_is_readable_as_the_umask_says(tmp_path):
    photos = own_images(tmp_path / 'photos')
    out = tmp_path / 'shared' / 'records'
    assert convert_to_tfrecord.main([str(photos), str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for folder in (out.parent, out):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask


def write_records(folder, feature_of):
    """One training shard of 8 records whose features are feature_of(i), and a labels.txt."""
    import tensorflow as tf
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / 'own_train_00000-of-00001.tfrecord')) as writer:
        for i in range(8):
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature_of(i))).SerializeToString())
    (folder / 'labels.txt').write_text('0:a\n1:b\n')
    return folder / 'own_train_00000-of-00001.tfrecord'


def png_bytes():
    import numpy as np
    import tensorflow as tf
    return tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()


@pytest.mark.parametrize('schema,message', [
    ('keys', 'record 0 has no image/encoded feature (it has image/class/label, image/raw)'),
    ('types', 'record 0 holds image/class/label as float_list, not int64_list'),
])
@pytest.mark.parametrize('size', ['32', '40'])
def test_records_of_another_schema_are_refused_before_training(capsys, tmp_path, schema,
                                                               message, size):
    import tensorflow as tf

    def feature_of(i):
        encoded = tf.train.Feature(bytes_list=tf.train.BytesList(value=[png_bytes()]))
        if schema == 'keys':
            return {'image/raw': encoded, 'image/class/label': tf.train.Feature(
                int64_list=tf.train.Int64List(value=[i % 2]))}
        return {'image/encoded': encoded, 'image/class/label': tf.train.Feature(
            float_list=tf.train.FloatList(value=[i % 2]))}
    shard = write_records(tmp_path / 'records', feature_of)
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(tmp_path / 'records'),
                              '--image_size', size, '--ckpt_dir', str(run)]) == 2
    line = last_error(capsys)
    assert '%s: %s' % (shard, message) in line
    assert not run.exists()


def white_photo(tmp_path):
    from PIL import Image
    import numpy as np
    path = tmp_path / 'white.png'
    Image.fromarray(np.full((40, 50, 3), 255, np.uint8)).save(path)
    return str(path)


def mean_model(path, batch=None, uint8=False, metadata=None):
    """A foreign TFLite model (no .json beside it): 2 classes, softmax([mean of the input, 0]),
    so that class 0's probability says what the pixels were mapped to."""
    import numpy as np
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([batch, 32, 32, 3], tf.float32)])
    def model(images):
        mean = tf.reduce_mean(images, axis=[1, 2, 3])[:, None]
        return tf.nn.softmax(tf.concat([mean, tf.zeros_like(mean)], 1))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()],
                                                                model)
    if uint8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Flat images from -1 to 1: the mean inside spans that range too.
        converter.representative_dataset = lambda: (
            [np.full((1, 32, 32, 3), value, np.float32)] for value in np.linspace(-1, 1, 21))
        converter.inference_input_type = tf.uint8
    data = converter.convert()
    if metadata:
        data = with_normalization_metadata(data, *metadata)
    path.write_bytes(data)
    return str(path)


def with_normalization_metadata(data, mean, std):
    """The model with TFLite Support's metadata: NormalizationOptions(mean, std) on its input."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def table(builder, fields):
        # fields: [(slot, kind, value)] with kind 'offset' or 'uint8'.
        builder.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if kind == 'offset':
                builder.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                builder.PrependUint8Slot(slot, value, 0)
        return builder.EndObject()

    def vector(builder, items, floats=False):
        builder.StartVector(4, len(items), 4)
        for item in reversed(items):
            builder.PrependFloat32(item) if floats else builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    builder = flatbuffers.Builder(256)
    means, stds = vector(builder, mean, True), vector(builder, std, True)
    options = table(builder, [(0, 'offset', means), (1, 'offset', stds)])
    unit = table(builder, [(0, 'uint8', 1), (1, 'offset', options)])
    units = vector(builder, [unit])
    tensor = table(builder, [(4, 'offset', units)])
    subgraph = table(builder, [(2, 'offset', vector(builder, [tensor]))])
    builder.Finish(table(builder, [(3, 'offset', vector(builder, [subgraph]))]))
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buffer = schema.BufferT()
    buffer.data = list(builder.Output())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = 'TFLITE_METADATA', len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    out = flatbuffers.Builder(len(data) + 1024)
    out.Finish(model.Pack(out), file_identifier=b'TFL3')
    return bytes(out.Output())


def class0(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]['top_k'][0]


def test_a_float_tflite_model_that_says_nothing_of_its_input_is_refused(capsys, tmp_path):
    model = mean_model(tmp_path / 'foreign.tflite')
    assert predict.main([model, white_photo(tmp_path)]) == 2
    line = last_error(capsys)
    assert '%s: takes float32 input, and neither the .json' % model in line
    assert 'pass --normalization inception' in line
    # Said by the flag: white is 1.0 in [-1, 1], class 0 has sigmoid(1).
    assert predict.main([model, white_photo(tmp_path), '--normalization', 'inception']) == 0
    top = class0(capsys)
    assert top['label'] == 'class_0' and top['probability'] == pytest.approx(0.7311, abs=1e-3)


def test_a_tflite_models_own_metadata_says_how_it_takes_pixels(capsys, tmp_path):
    model = mean_model(tmp_path / 'described.tflite', metadata=([127.5] * 3, [127.5] * 3))
    assert predict.main([model, white_photo(tmp_path)]) == 0
    assert class0(capsys)['probability'] == pytest.approx(0.7311, abs=1e-3)


def test_a_uint8_tflite_model_takes_the_pixels_themselves(capsys, tmp_path):
    # Calibrated on [-1, 1]: the converter's input quantization maps pixel 255 to about 1.
    model = mean_model(tmp_path / 'quant.tflite', uint8=True)
    assert predict.main([model, white_photo(tmp_path)]) == 0
    assert class0(capsys)['probability'] == pytest.approx(0.7311, abs=0.02)


def test_a_tflite_model_fixed_at_batch_1_scores_a_whole_split(capsys, tmp_path, tiny_cifar):
    model = mean_model(tmp_path / 'single.tflite', batch=1)
    capsys.readouterr()
    # 2 classes against CIFAR-10's 10 is refused, after its whole input was read one at a time.
    assert evaluate.main([model, '--data_dir', str(tiny_cifar), '--normalization', 'inception',
                          '--batch_size', '16']) == 2
    assert 'has 2 classes, CIFAR-10 10' in last_error(capsys)
    import numpy as np
    from deployment import models
    loaded = models.load_model(model, normalization='inception')
    assert loaded.predict(np.full((5, 32, 32, 3), 255.0)).shape == (5, 2)


def flip_a_payload_byte(shard, record):
    """One byte inside the `record`-th record's payload flipped, its length header intact."""
    import struct
    data = bytearray(shard.read_bytes())
    offset = 0
    for _ in range(record):
        offset += 12 + struct.unpack('<Q', data[offset:offset + 8])[0] + 4
    length = struct.unpack('<Q', data[offset:offset + 8])[0]
    data[offset + 12 + length // 2] ^= 0xFF
    shard.write_bytes(bytes(data))


@pytest.fixture
def damaged_records(tmp_path):
    """TFRecords of own_images with a flipped byte in record 2 of a training and a test shard."""
    photos = tmp_path / 'photos'
    own_images(photos / 'train')
    for name in ('cat', 'dog', 'eel'):
        (photos / 'test' / name).mkdir(parents=True)
        for path in sorted((photos / 'train' / name).glob('[67].*')):
            path.rename(photos / 'test' / name / path.name)
    out = tmp_path / 'records'
    assert convert_to_tfrecord.main([str(photos), str(out), '--shards', '2']) == 0
    train_shard = sorted(out.glob('*_train_*'))[0]
    test_shard = sorted(out.glob('*_test_*'))[0]
    flip_a_payload_byte(train_shard, 2)
    flip_a_payload_byte(test_shard, 2)
    return out, train_shard, test_shard


@pytest.mark.parametrize('size', ['32', '40'])
def test_a_damaged_record_is_skipped_and_named_in_its_place(capsys, tmp_path, damaged_records,
                                                            size):
    out, train_shard, test_shard = damaged_records
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(out), '--image_size', size,
                              '--steps_per_epoch', '0', '--ckpt_dir', str(run)]) == 0
    skipped = (run / 'skipped_images.txt').read_text()
    why = 'a damaged record: its checksum does not match its bytes'
    assert '%s#2\t%s' % (test_shard, why) in skipped
    if size == '32':  # read whole at load; streamed, the epoch reads it
        assert '%s#2\t%s' % (train_shard, why) in skipped
    capsys.readouterr()
    assert evaluate.main([str(run)]) == 0
    out_text = capsys.readouterr().out
    assert '%s#2 (%s)' % (test_shard, why) in out_text


def test_int8_calibration_on_a_damaged_shard_finishes(tmp_path, damaged_records):
    import subprocess
    import sys
    out, _, _ = damaged_records
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(out), '--image_size', '40',
                              '--ckpt_dir', str(run)]) == 0
    # In a process of its own: the hang this guards against came at interpreter shutdown.
    done = subprocess.run([sys.executable, 'freeze_graph.py', '--ckpt', str(run), '--output',
                           str(tmp_path / 'frozen' / 'model.pb'), '--tflite', 'int8',
                           '--calibration_images', '16'], cwd=os.path.dirname(train.__file__),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / 'frozen' / 'model_int8.tflite').exists()


def test_the_layers_a_trainable_scope_trains_are_named(capsys, tmp_path, folder_run):
    run, photos = folder_run
    assert pretrain(tmp_path, folder_run, '--pretrain_path', str(run), '--trainable_scopes',
                    'MobilenetV1/Conv2d_1,MobilenetV1/Logits') == 0
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith('Training ')]
    assert line == ['Training 8 of the 137 model variables (--trainable_scopes '
                    'MobilenetV1/Conv2d_1,MobilenetV1/Logits): MobilenetV1/Conv2d_1_depthwise, '
                    'MobilenetV1/Conv2d_1_pointwise, MobilenetV1/Logits']


def test_a_full_disk_is_named_not_the_python_line_tensorflow_quotes():
    from checkpoints import reading

    class SaveFailed(Exception):
        message = ('Graph execution error:\n\nDetected at node \'save/SaveV2\' defined at (most '
                   'recent call last):\n  File "/repo/train.py", line 68, in <module>\n'
                   '    sys.exit(main())\nNode: \'save/SaveV2\'\n/run/model.ckpt-4_temp/part-00000-'
                   'of-00001.data-00000-of-00001.tempstate9; No space left on device\n\t '
                   '[[{{node save/SaveV2}}]]')
    assert reading.first_line(SaveFailed()).endswith('; No space left on device')


def test_a_refused_run_leaves_a_sibling_made_meanwhile(tmp_path):
    from checkpoints import run_files
    runs = tmp_path / 'runs'
    with pytest.raises(errors.UsageError):
        with run_files.run_folder(str(runs / 'a')):
            (runs / 'b').mkdir()  # another training, started beside it in the folder both made
            (runs / 'b' / 'train.lock').write_text('1')
            raise errors.UsageError('refused')
    assert sorted(os.listdir(runs)) == ['b']


def test_the_runs_own_data_named_another_way_keeps_its_splits(capsys, folder_run):
    run, photos = folder_run
    capsys.readouterr()
    assert evaluate.main([str(run), '--data_dir', os.path.relpath(photos.resolve())]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['split'] == 'test' and result['num_images'] == 5


def test_our_own_tflite_is_not_normalized_twice(capsys, tmp_path, folder_run):
    run, photos = folder_run
    frozen = tmp_path / 'frozen' / 'model.pb'
    assert freeze_graph.main(['--ckpt', str(run), '--output', str(frozen)]) == 0
    photo = str(sorted((photos / 'cat').glob('*.png'))[0])
    capsys.readouterr()
    tops = []
    for flags in ([], ['--normalization', 'inception']):
        assert predict.main([str(frozen.with_suffix('.tflite')), photo] + flags) == 0
        tops.append(class0(capsys))
    assert tops[0] == tops[1]


def test_ctrl_c_in_the_middle_of_replacing_files_waits_for_the_last(tmp_path, monkeypatch):
    paths = [str(tmp_path / name) for name in ('m.pb', 'm.json', 'm.tflite')]
    for path in paths:
        open(path, 'w').write('old')
    real_replace, moves = os.replace, []

    def replace_then_ctrl_c(src, dst):
        moves.append(dst)
        real_replace(src, dst)
        if len(moves) == 3:  # the second file just moved aside: a real signal, not an exception
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, 'replace', replace_then_ctrl_c)
    # Python's own Ctrl-C handler, whatever started the tests (a background shell ignores it).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            files.write_files({path: 'new' for path in paths})
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(os.listdir(tmp_path)) == ['m.json', 'm.pb', 'm.tflite']
    assert all(open(path).read() == 'new' for path in paths)


def test_what_a_writer_killed_mid_swap_left_is_set_right(tmp_path):
    moved_aside, placed = str(tmp_path / 'm.pb'), str(tmp_path / 'm.json')
    open(moved_aside + '.old', 'w').write('old')  # killed after moving it aside
    open(moved_aside + '.tmp', 'w').write('new, not placed')
    open(placed, 'w').write('new')  # killed after placing it, before removing its .old
    open(placed + '.old', 'w').write('old')
    with pytest.raises(IsADirectoryError):  # refused before anything: the leftovers stay as found
        files.write_files({str(tmp_path): 'x', moved_aside: 'newer'})
    files.write_files({moved_aside: 'newer', placed: 'newer'})
    assert sorted(os.listdir(tmp_path)) == ['m.json', 'm.pb']
    assert open(moved_aside).read() == open(placed).read() == 'newer'


def test_a_failed_write_after_a_killed_one_puts_the_earlier_file_back(tmp_path):
    path = str(tmp_path / 'm.pb')
    open(path + '.old', 'w').write('old')  # killed mid-swap: the only copy of the earlier file
    open(path + '.tmp', 'w').write('new, not placed')
    (tmp_path / 'afile').write_text('')
    with pytest.raises(OSError):  # its second file cannot be written: nothing is replaced
        files.write_files({path: 'new', str(tmp_path / 'afile' / 'm.json'): 'new'})
    assert sorted(os.listdir(tmp_path)) == ['afile', 'm.pb'] and open(path).read() == 'old'


def test_a_users_own_old_copy_is_not_taken_for_a_killed_writers(tmp_path):
    path = str(tmp_path / 'model.pb')
    open(path + '.old', 'w').write('my backup')  # mv model.pb model.pb.old
    files.write_files({path: 'new'})
    assert open(path).read() == 'new' and open(path + '.old').read() == 'my backup'


def test_a_class_folder_that_links_back_to_the_data_is_refused(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    (photos / 'all').symlink_to(photos)
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos),
                              '--ckpt_dir', str(tmp_path / 'run')]) == 2
    assert '%s: links to %s, a folder that holds it' % (photos / 'all', photos) \
        in last_error(capsys)
    (photos / 'all').unlink()
    (photos / 'moggy').symlink_to(photos / 'cat')
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos),
                              '--ckpt_dir', str(tmp_path / 'run')]) == 2
    assert 'are the same folder (a link)' in last_error(capsys)
    assert not (tmp_path / 'run').exists()


def test_evaluate_on_another_folder_alone_reads_it_as_a_folder(capsys, tmp_path, folder_run):
    run, photos = folder_run
    other = tmp_path / 'other'
    for name in ('cat', 'dog', 'eel'):
        (other / name).mkdir(parents=True)
        for source in sorted((photos / name).glob('[0-3].*')):
            (other / name / source.name).write_bytes(source.read_bytes())
    capsys.readouterr()
    assert evaluate.main([str(run), '--data_dir', str(other)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['dataset'] == 'folder' and result['split'] == 'train'
    assert result['num_images'] == 12


def test_a_folder_changed_under_a_run_is_refused_on_resume_and_noted_by_evaluate(capsys,
                                                                               tmp_path):
    photos = own_images(tmp_path / 'photos')
    run = tmp_path / 'run'
    flags = TINY + ['--dataset', 'folder', '--data_dir', str(photos), '--test_size', '6',
                    '--ckpt_dir', str(run)]
    assert train.main(flags) == 0
    (photos / 'cat' / '0.png').unlink()
    (photos / 'eel' / '0.png').rename(photos / 'eel' / 'renamed.png')  # same sizes, other images
    capsys.readouterr()
    assert train.main(flags[:flags.index('--epochs') + 1] + ['2'] +
                      flags[flags.index('--epochs') + 2:]) == 2
    line = last_error(capsys)
    assert '--data_dir %s holds train ' % photos in line
    assert 'the run being resumed in %s began on train 19, val 0, test 5' % run in line
    (photos / 'dog' / '9.png').write_bytes((photos / 'eel' / 'renamed.png').read_bytes())
    capsys.readouterr()
    assert train.main(flags[:flags.index('--epochs') + 1] + ['2'] +
                      flags[flags.index('--epochs') + 2:]) == 2
    assert 'carve other held-out images (some it trained on)' in last_error(capsys)
    assert evaluate.main([str(run)]) == 0
    assert 'Note: images were added to or removed from %s since the run was trained' % photos \
        in capsys.readouterr().out
    assert [json.loads(line)['epoch'] for line in (run / 'metrics.jsonl').read_text().splitlines()] \
        == [1]


def test_a_class_with_no_training_image_is_noted(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    for path in (photos / 'eel').iterdir():
        path.write_bytes(b'not an image')
    assert train.main(TINY + ['--dataset', 'folder', '--data_dir', str(photos),
                              '--ckpt_dir', str(tmp_path / 'run')]) == 0
    assert 'Note: no training image of class eel (held out, or none decodes)' \
        in capsys.readouterr().out


def records_of(tmp_path, shards=2, test=True):
    data = tmp_path / 'records'
    data.mkdir()
    write_slim_shards(data, ['a', 'b', 'c'], 6, shards, 'train')
    if test:
        write_slim_shards(data, ['a', 'b', 'c'], 4, 1, 'test')
    (data / 'labels.txt').write_text('0:a\n1:b\n2:c\n')
    return data


@pytest.mark.parametrize('damage,note,left', [
    ('cut', 'it is cut short at byte', 5),
    ('header', 'its framing is damaged at byte', 2),
    ('empty', 'holds no records', 0),
])
def test_a_shard_broken_part_way_gives_its_records_before_the_break(capsys, tmp_path, damage,
                                                                    note, left):
    data = records_of(tmp_path)
    shard = sorted(data.glob('*train_00001*'))[0]
    content = shard.read_bytes()
    if damage == 'cut':
        shard.write_bytes(content[:-20])
    elif damage == 'header':
        length = len(content) // 6  # the records are nearly the same size: the third one's header
        starts = [0]
        while starts[-1] < len(content):
            starts.append(starts[-1] + 16 + int.from_bytes(content[starts[-1]:starts[-1] + 8],
                                                           'little'))
        broken = bytearray(content)
        broken[starts[2] + 1] ^= 0xFF
        shard.write_bytes(bytes(broken))
        assert length
    else:
        shard.write_bytes(b'')
    assert train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(data),
                              '--ckpt_dir', str(tmp_path / 'run')]) == 0
    out = capsys.readouterr().out
    assert 'Note: %s: %s' % (shard, note) in out or 'Note: %s %s' % (shard, note) in out
    assert 'train %d images' % (6 + left) in out


def test_evaluate_refuses_to_score_training_records_in_place_of_a_test_split(capsys, tmp_path):
    data = records_of(tmp_path, test=False)
    run = tmp_path / 'run'
    assert train.main(TINY + ['--dataset', 'tfrecord', '--data_dir', str(data),
                              '--ckpt_dir', str(run)]) == 0
    capsys.readouterr()
    assert evaluate.main([str(run)]) == 2
    assert '%s: no test or validation split; pass --split train' % data in last_error(capsys)
    assert evaluate.main([str(run), '--split', 'train']) == 0


def test_a_conversion_where_no_image_of_a_split_decodes_writes_nothing(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    test = photos.parent / 'split' / 'test'
    (photos.parent / 'split').mkdir()
    photos.rename(photos.parent / 'split' / 'train')
    for name in ('cat', 'dog', 'eel'):
        (test / name).mkdir(parents=True)
        (test / name / 'x.jpg').write_bytes(b'not an image')
    out = tmp_path / 'records'
    assert convert_to_tfrecord.main([str(photos.parent / 'split'), str(out)]) == 2
    assert 'none of the 3 test images can be read or decode' in last_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize('seed', ['-1', '4294967296'])
def test_a_conversion_seed_out_of_range_is_one_line(capsys, tmp_path, seed):
    with pytest.raises(SystemExit) as exit_info:
        convert_to_tfrecord.main([str(own_images(tmp_path / 'photos')), str(tmp_path / 'out'),
                                  '--seed', seed])
    assert exit_info.value.code == 2
    assert '--seed must be from 0 to 4294967295, got %s' % seed in last_error(capsys)


def test_sigterm_part_way_through_a_conversion_leaves_nothing(tmp_path, monkeypatch):
    from datasets import tfrecords
    photos = own_images(tmp_path / 'photos')
    made = []

    def example_then_sigterm(*args):
        made.append(args)
        if len(made) == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    real = tfrecords.example
    monkeypatch.setattr(tfrecords, 'example', example_then_sigterm)
    out = tmp_path / 'records'
    assert convert_to_tfrecord.main([str(photos), str(out)]) == 143
    assert not out.exists()
