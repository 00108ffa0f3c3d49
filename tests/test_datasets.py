"""Own images: folder and TFRecord datasets, their splits, errors, decoding and preprocessing."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import own_images

from preflight import command_line
import convert_to_tfrecord
import data_utils
from preflight import errors
from datasets import decoding
from datasets import image_folder
from datasets import sources
from datasets import tfrecords
from pipelines import streamed
from training import plan as run_plan
from training import run_data
import train

v1 = tf.compat.v1


def folder_from_pickles(cifar_dir, root):
    """The tiny CIFAR-10 as a folder dataset of lossless PNGs: train/<class>/, test/<class>/."""
    data = data_utils.load_cifar10(str(cifar_dir))
    for split in ('train', 'test'):
        for i, (image, label) in enumerate(zip(data[split + '_images'], data[split + '_labels'])):
            folder = root / split / data['label_names'][label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / ('%04d.png' % i))
    return data


def as_set(images):
    """Images sorted by their bytes: the same data whatever the order it was read in."""
    return sorted(image.tobytes() for image in images)


def test_folder_tfrecord_and_pickles_give_the_same_images(tiny_cifar, tmp_path):
    pickles = folder_from_pickles(tiny_cifar, tmp_path / 'folder')
    written, bad = tfrecords.convert(str(tmp_path / 'folder'), str(tmp_path / 'rec'),
                                               shards=3, name='tiny')
    assert written == dict(train=160, test=40) and bad == []
    for dataset, data_dir in (('folder', tmp_path / 'folder'), ('tfrecord', tmp_path / 'rec')):
        data = run_data.load_data(command_line.parse_config(['--dataset', dataset, '--data_dir',
                                                    str(data_dir)]))
        assert data['label_names'] == pickles['label_names']
        for split in ('train', 'test'):
            assert data[split + '_images'].dtype == np.uint8
            assert as_set(data[split + '_images']) == as_set(pickles[split + '_images'])
            pairs = sorted(zip((i.tobytes() for i in data[split + '_images']),
                               data[split + '_labels']))
            expected = sorted(zip((i.tobytes() for i in pickles[split + '_images']),
                                  pickles[split + '_labels']))
            assert pairs == expected
        assert len(data['val_images']) == 0


def test_streamed_folder_and_tfrecord_give_the_same_views(tiny_cifar, tmp_path):
    folder_from_pickles(tiny_cifar, tmp_path / 'folder')
    tfrecords.convert(str(tmp_path / 'folder'), str(tmp_path / 'rec'), 2, 'tiny')
    views = []
    for split in (image_folder.load_folder(str(tmp_path / 'folder'))['test'],
                  tfrecords.load_tfrecord(str(tmp_path / 'rec'))['test']):
        with tf.Graph().as_default(), v1.Session() as sess:
            images, labels, init, feed = streamed.input_pipeline(split, 10, 16, False, 48)
            sess.run(init, feed())
            batches = []
            while True:
                try:
                    batches.append(sess.run([images, labels]))
                except tf.errors.OutOfRangeError:
                    break
        assert [len(b[0]) for b in batches] == [16, 16, 8]
        views.append(sorted(zip((np.round(i, 3).tobytes() for b in batches for i in b[0]),
                                (int(x) for b in batches for x in b[1]))))
    assert views[0] == views[1]
    assert np.frombuffer(views[0][0][0], np.float32).size == 48 * 48 * 3


def test_mixed_images_decode_and_the_corrupt_one_is_skipped_and_named(tmp_path):
    root = own_images(tmp_path / 'own')
    split = image_folder.load_folder(str(root))['train']
    names = sorted(os.path.basename(p) for p in split.paths)
    assert len(split.paths) == 25 and 'broken.jpg' in names
    assert not any(n.endswith(('.txt', '.db', '.DS_Store')) for n in names)
    images, labels = decoding.decode_into_memory(split, 3, 'train')
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.uint8
    assert list(np.bincount(labels)) == [8, 8, 8]
    skipped = decoding.skipped_images()
    assert str(root / 'dog' / 'broken.jpg') in skipped
    # Greyscale became RGB (three equal channels); colour kept its dominant channel.
    assert any((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
               for img in images)


@pytest.mark.parametrize('size,stem', [(32, 'cifar'), (48, 'imagenet')])
def test_train_on_a_folder_names_the_skipped_image_and_scores_validation(capsys, tmp_path, size,
                                                                          stem):
    root = own_images(tmp_path / 'own')
    ckpt = tmp_path / 'ckpt'
    flags = ['--dataset', 'folder', '--data_dir', str(root), '--ckpt_dir', str(ckpt),
             '--width', '0.25', '--batch_size', '4', '--epochs', '1', '--val_size', '6',
             '--eval_batch_size', '5', '--image_size', str(size), '--stem', stem]
    assert train.main(flags) == 0
    out = capsys.readouterr().out
    # 25 files, 6 held out; at 32x32 the corrupt one is already gone, streamed it is found later.
    assert re.search(r'Data: folder, 3 classes; train (18|19) images, val [56] images; scored on '
                     r'the val split', out)
    record = json.loads((ckpt / 'metrics.jsonl').read_text().splitlines()[-1])
    assert record['skipped_images'] >= 1
    assert str(root / 'dog' / 'broken.jpg') in record['skipped_files']
    assert 0 <= record['val_accuracy'] <= 1
    saved = json.loads((ckpt / 'config.json').read_text())
    assert saved['label_names'] == ['cat', 'dog', 'eel'] and saved['dataset'] == 'folder'


def test_carved_splits_are_fixed_disjoint_and_seeded(tmp_path):
    root = own_images(tmp_path / 'own')
    one = image_folder.load_folder(str(root), val_size=5, test_size=4, seed=1)
    again = image_folder.load_folder(str(root), val_size=5, test_size=4, seed=1)
    other = image_folder.load_folder(str(root), val_size=5, test_size=4, seed=2)
    assert [len(one[s].paths) for s in ('train', 'val', 'test')] == [16, 5, 4]
    assert all(one[s].paths == again[s].paths for s in ('train', 'val', 'test'))
    assert one['val'].paths != other['val'].paths
    assert not set(one['train'].paths) & (set(one['val'].paths) | set(one['test'].paths))


def bad_folder(tmp_path, case):
    root = tmp_path / case
    root.mkdir()
    if case == 'flat':
        Image.new('RGB', (8, 8)).save(root / 'a.png')
    elif case == 'one_class':
        (root / 'cat').mkdir()
        Image.new('RGB', (8, 8)).save(root / 'cat' / 'a.png')
    elif case == 'empty_class':
        for name in ('cat', 'dog'):
            (root / name).mkdir()
        Image.new('RGB', (8, 8)).save(root / 'cat' / 'a.png')
        (root / 'dog' / 'readme.txt').write_text('no images here')
    return root


@pytest.mark.parametrize('case,message', [
    ('flat', '{root}: no class subfolders'),
    ('one_class', '{root}: only one class folder (cat)'),
    ('empty_class', '{root}/dog: no images (JPEG, PNG, BMP or GIF) in this class folder'),
    ('missing', '{root}: no such folder'),
])
def test_bad_folders_are_one_line_before_training(capsys, tmp_path, case, message):
    root = bad_folder(tmp_path, case) if case != 'missing' else tmp_path / 'missing'
    ckpt = tmp_path / 'ckpt'
    assert train.main(['--dataset', 'folder', '--data_dir', str(root), '--ckpt_dir',
                       str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('train.py: error: ' + message.format(root=root))
    assert not (ckpt / 'metrics.jsonl').exists()


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0, reason='root reads any folder')
def test_an_unreadable_folder_is_one_line(capsys, tmp_path):
    root = own_images(tmp_path / 'own')
    os.chmod(root / 'cat', 0)
    try:
        assert train.main(['--dataset', 'folder', '--data_dir', str(root)]) == 2
    finally:
        os.chmod(root / 'cat', 0o755)
    assert 'cannot read this folder' in capsys.readouterr().err


def write_slim_shards(root, names, per_shard, shards, split_word):
    """Records as slim's download_and_convert_data.py writes them (PNG-encoded)."""
    rng = np.random.RandomState(0)
    for s in range(shards):
        path = root / ('flowers_%s_%05d-of-%05d.tfrecord' % (split_word, s, shards))
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in range(per_shard):
                label = (s * per_shard + i) % len(names)
                encoded = tf.io.encode_png(rng.randint(0, 255, (20, 30, 3)).astype(np.uint8))
                feature = {
                    'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[encoded.numpy()])),
                    'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'png'])),
                    'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[label])),
                    'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[20])),
                    'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[30]))}
                writer.write(tf.train.Example(features=tf.train.Features(
                    feature=feature)).SerializeToString())


def test_slims_tfrecord_layout_is_read_unchanged(tmp_path):
    names = ['daisy', 'dandelion', 'roses']
    write_slim_shards(tmp_path, names, 5, 2, 'train')
    write_slim_shards(tmp_path, names, 4, 1, 'validation')
    (tmp_path / 'labels.txt').write_text(''.join('%d:%s\n' % (i, n) for i, n in enumerate(names)))
    data = tfrecords.load_tfrecord(str(tmp_path))
    assert data['label_names'] == names
    assert (data['train'].counts, data['val'].counts, data['test'].counts) == ((5, 5), (4,), ())
    assert [os.path.basename(p) for p in data['train'].shards] == [
        'flowers_train_00000-of-00002.tfrecord', 'flowers_train_00001-of-00002.tfrecord']
    images, labels = decoding.decode_into_memory(data['val'], 3, 'val')
    assert images.shape == (4, 32, 32, 3) and list(labels) == [0, 1, 2, 0]


def worker_views(split, worker, batch, steps, epoch=0, skip=0):
    """The eval views (augment off) a worker's training pipeline yields, a list of batches."""
    with tf.Graph().as_default(), v1.Session() as sess:
        images, labels, init, feed = streamed.input_pipeline(
            split, 3, batch, True, 24, seed=5, augment=False, worker=worker)
        sess.run(init, feed(epoch=epoch, skip_batches=skip))
        return [sess.run(images) for _ in range(steps)]


def views_of(shards):
    """{bytes of the view: shard} of every record of the shards, as evaluation sees it."""
    seen = {}
    for shard in shards:
        split = sources.Records([shard], (0,))
        for source, _, label in decoding.elements(split).as_numpy_iterator():
            image, _ = decoding.decode(tf.constant(source), tf.constant(b''), label, 3, False)
            seen[streamed.eval_view(image, 24).numpy().tobytes()] = shard
    return seen


def streamed_train(split):
    """load_data's dict of a streamed training split and no other."""
    nothing = np.zeros(0, np.int64)
    return dict(train_images=split, train_labels=None, val_images=nothing, val_labels=nothing,
                test_images=nothing, test_labels=nothing)


def test_tfrecords_are_sharded_by_file_between_workers(tmp_path):
    write_slim_shards(tmp_path, ['a', 'b', 'c'], 6, 4, 'train')
    (tmp_path / 'labels.txt').write_text('0:a\n1:b\n2:c\n')
    split = tfrecords.load_tfrecord(str(tmp_path))['train']
    cfg = dict(command_line.parse_config(['--batch_size', '4']), workers=2, worker_batch=2)
    plan = dict(cfg, **run_data.facts(cfg, streamed_train(split)))
    # 2 shards of 6 records a worker, 2 images a step: 6 steps, the single process's 24 // 4.
    assert plan['steps_per_epoch'] == 6
    assert run_plan.describe_sharding(plan, 1) == (
        'Data: reads 2 of the 4 TFRecord shards (12 records), sharded by file')
    views = views_of(split.shards)
    assert len(views) == 24
    read = []
    for index in (0, 1):
        epoch = worker_views(split, (index, 2), 4, 6)
        assert all(b.shape == (2, 24, 24, 3) for b in epoch)
        shards = {views[image.tobytes()] for b in epoch for image in b}
        # Each worker reads its own shards whole, once an epoch, and nothing of the others'.
        assert shards == set(split.shards[index::2])
        read.extend(image.tobytes() for b in epoch for image in b)
        # Seeded: the same again, resumed where it stopped, and another order next epoch.
        resumed = worker_views(split, (index, 2), 4, 4, skip=2)
        np.testing.assert_array_equal(np.stack(epoch[2:]), np.stack(resumed))
        later = worker_views(split, (index, 2), 4, 6, epoch=1)
        assert not np.array_equal(np.stack(epoch), np.stack(later))
    assert sorted(read) == sorted(views)


def test_fewer_shards_than_workers_are_sliced_by_batch(tmp_path):
    write_slim_shards(tmp_path, ['a', 'b', 'c'], 6, 1, 'train')
    (tmp_path / 'labels.txt').write_text('0:a\n1:b\n2:c\n')
    split = tfrecords.load_tfrecord(str(tmp_path))['train']
    cfg = dict(command_line.parse_config(['--batch_size', '4']), workers=2, worker_batch=2)
    plan = dict(cfg, **run_data.facts(cfg, streamed_train(split)))
    assert plan['steps_per_epoch'] == 1
    assert 'each reads them all' in run_plan.describe_sharding(plan, 0)
    whole = worker_views(split, (0, 1), 4, 1)[0]
    halves = [worker_views(split, (i, 2), 4, 1)[0] for i in (0, 1)]
    np.testing.assert_array_equal(whole, np.concatenate(halves))


def test_unequal_shards_between_workers_say_what_an_epoch_leaves_out(tmp_path):
    write_slim_shards(tmp_path, ['a', 'b', 'c'], 6, 3, 'train')
    (tmp_path / 'labels.txt').write_text('0:a\n1:b\n2:c\n')
    data = streamed_train(tfrecords.load_tfrecord(str(tmp_path))['train'])
    cfg = dict(command_line.parse_config(['--batch_size', '4']), workers=2, worker_batch=2)
    plan = dict(cfg, **run_data.facts(cfg, data))
    # Worker 0 holds 2 shards, worker 1 one: lockstep at worker 1's 6 records, 3 steps.
    assert plan['steps_per_epoch'] == 3
    assert run_plan.describe_sharding(plan, 0) == (
        'Data: reads 2 of the 3 TFRecord shards (12 records), sharded by file; an epoch is 3 '
        'steps, not 4, as the smallest worker\'s shards hold 6 records: write a multiple of 2 '
        'shards of equal size for all of them')


@pytest.mark.parametrize('text,message', [
    ('0:daisy\n2:roses\n', 'labels must be 0, 1, ... with no gaps'),
    ('daisy\ntulips\n', 'line 1 is not "label:name"'),
])
def test_a_bad_labels_file_is_one_line(tmp_path, text, message):
    write_slim_shards(tmp_path, ['a', 'b'], 2, 1, 'train')
    (tmp_path / 'labels.txt').write_text(text)
    with pytest.raises(errors.DataError, match=message):
        tfrecords.load_tfrecord(str(tmp_path))


def test_inception_crops_are_keyed_and_the_eval_view_is_the_centre():
    image = tf.constant(np.arange(60 * 80 * 3).reshape(60, 80, 3) % 251, tf.uint8)
    first = streamed.train_crop(image, 24, tf.constant([1, 2], tf.int64))
    again = streamed.train_crop(image, 24, tf.constant([1, 2], tf.int64))
    other = streamed.train_crop(image, 24, tf.constant([1, 3], tf.int64))
    assert first.shape == (24, 24, 3) and first.dtype == tf.float32
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    centre = streamed.eval_view(image, 24)
    # tf.image.central_crop: int((60 - 52.5) / 2) = 3 rows and int((80 - 70) / 2) = 5 columns off.
    expected = tf.image.resize(tf.cast(image[3:57, 5:75], tf.float32), [24, 24])
    np.testing.assert_allclose(centre, expected, atol=1e-4)


def test_a_resumed_streamed_epoch_continues_where_it_stopped(tmp_path):
    # The corrupt image among them keeps its place (label -1), so nothing shifts on resume.
    root = own_images(tmp_path / 'own')
    split = image_folder.load_folder(str(root))['train']

    def batches(skip, count):
        with tf.Graph().as_default(), v1.Session() as sess:
            images, labels, init, feed = streamed.input_pipeline(split, 3, 5, True, 24, seed=5)
            sess.run(init, feed(epoch=2, skip_batches=skip))
            return [sess.run([images, labels]) for _ in range(count)]

    whole, resumed = batches(0, 5), batches(2, 3)
    labels = np.concatenate([b[1] for b in whole])
    assert sorted(labels.tolist()) == [-1] + [0] * 8 + [1] * 8 + [2] * 8
    for (a_images, a_labels), (b_images, b_labels) in zip(whole[2:], resumed):
        np.testing.assert_array_equal(a_labels, b_labels)
        np.testing.assert_allclose(a_images, b_images)
    blank = whole[int(np.argmax([(-1 in b[1]) for b in whole]))]
    assert not blank[0][list(blank[1]).index(-1)].any()


def test_the_converter_refuses_a_name_that_would_pass_for_a_split(capsys, tmp_path):
    root = own_images(tmp_path / 'own')
    for name in ('my_test', 'val', 'cifar10-train', 'a b'):
        with pytest.raises(SystemExit) as exit_info:
            convert_to_tfrecord.main([str(root), str(tmp_path / 'rec'), '--name', name])
        assert exit_info.value.code == 2
        assert '--name %r' % name in capsys.readouterr().err
    assert not (tmp_path / 'rec').exists()


def test_a_test_folder_beside_the_class_folders_needs_them_in_train(tmp_path):
    """Else test/ would be read as one more class, its images trained on."""
    from preflight.errors import DataError
    root = own_images(tmp_path / 'photos')
    (root / 'test' / 'cat').mkdir(parents=True)
    Image.new('RGB', (8, 8)).save(root / 'test' / 'cat' / 'a.png')
    with pytest.raises(DataError, match=r'photos: has test/ but no train/ folder beside it; put '
                                        r'the training class folders in .*photos/train'):
        image_folder.load_folder(str(root))
