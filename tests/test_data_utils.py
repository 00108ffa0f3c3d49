"""data_utils.py on tiny official-format CIFAR-10 data made in tmp_path."""
import functools
import hashlib
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf

import data_utils
from pipelines import in_memory
from preflight.errors import DataError

v1 = tf.compat.v1

IMAGES_PER_BATCH = 20
ALL_FILES = data_utils.TRAIN_FILES + [data_utils.TEST_FILE, data_utils.META_FILE]
LABEL_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck']


# --------------------------------------------------------------------------
# Official-format fixtures
# --------------------------------------------------------------------------

def official_pickle(obj):
    """Pickles like the published files: protocol 2, NumPy 1 module names."""
    data = pickle.dumps(obj, protocol=2)
    # NumPy 2 names its array reconstructor numpy._core.*; the official
    # files, written by NumPy 1, name numpy.core.* instead.
    return data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')


def raw_batch(seed, n=IMAGES_PER_BATCH):
    """A batch dict as in the official files: data [n, 3072] as R, G, B planes."""
    rng = np.random.RandomState(seed)
    return {b'batch_label': b'batch %d' % seed,
            b'data': rng.randint(0, 256, (n, 3072)).astype(np.uint8),
            b'labels': [int(v) for v in (np.arange(n) + seed) % 10],
            b'filenames': [b'img_%d.png' % i for i in range(n)]}


def write_cifar_dir(directory):
    """Writes the seven official files; returns {file name: batch dict}."""
    directory.mkdir(parents=True, exist_ok=True)
    batches = {name: raw_batch(seed) for seed, name in
               enumerate(data_utils.TRAIN_FILES + [data_utils.TEST_FILE], start=1)}
    for name, batch in batches.items():
        (directory / name).write_bytes(official_pickle(batch))
    meta = {b'num_cases_per_batch': IMAGES_PER_BATCH, b'num_vis': 3072,
            b'label_names': [n.encode() for n in LABEL_NAMES]}
    (directory / data_utils.META_FILE).write_bytes(official_pickle(meta))
    return batches


def make_archive(source_dir, tar_path, skip=(), extra_members=()):
    """Packs source_dir's files as cifar-10-batches-py/<name>; returns the MD5.

    extra_members: (TarInfo, bytes or None) pairs added first, for hostile archives.
    """
    with tarfile.open(tar_path, 'w:gz') as tar:
        for info, content in extra_members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
        for name in ALL_FILES + ['readme.html']:
            path = source_dir / name
            if name in skip:
                continue
            if name == 'readme.html':
                path.write_bytes(b'<html></html>')
            tar.add(path, arcname='cifar-10-batches-py/' + name)
    return hashlib.md5(tar_path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_source(tmp_path):
    """(directory of the seven files, its batches, archive path, archive MD5)."""
    source = tmp_path / 'source'
    batches = write_cifar_dir(source)
    archive = tmp_path / 'cifar-10-python.tar.gz'
    return source, batches, archive, make_archive(source, archive)


def assert_same_files(data_dir, source_dir):
    assert sorted(os.listdir(data_dir)) == sorted(ALL_FILES)
    for name in ALL_FILES:
        assert (data_dir / name).read_bytes() == (source_dir / name).read_bytes(), name


def assert_one_line_naming(error, name):
    message = str(error.value)
    assert str(name) in message
    assert '\n' not in message


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def test_load_cifar10_round_trips_pixels_labels_and_names(tmp_path):
    batches = write_cifar_dir(tmp_path)
    data = data_utils.load_cifar10(str(tmp_path))

    assert data['train_images'].shape == (5 * IMAGES_PER_BATCH, 32, 32, 3)
    assert data['train_images'].dtype == np.uint8
    assert data['test_images'].shape == (IMAGES_PER_BATCH, 32, 32, 3)
    assert data['train_labels'].dtype == np.int64
    assert data['label_names'] == LABEL_NAMES

    # Pixel (y, x) of channel c sits at c * 1024 + y * 32 + x of the row.
    raw = batches['data_batch_2'][b'data']
    image = data['train_images'][IMAGES_PER_BATCH + 7]
    for y, x in [(0, 0), (5, 17), (31, 31), (12, 3)]:
        rgb = [raw[7, c * 1024 + y * 32 + x] for c in range(3)]
        np.testing.assert_array_equal(image[y, x], rgb)
    assert len(set(image[5, 17])) > 1, 'pick a pixel whose R, G, B differ'

    for name, images in [('data_batch_1', data['train_images'][:IMAGES_PER_BATCH]),
                         ('data_batch_5', data['train_images'][-IMAGES_PER_BATCH:]),
                         ('test_batch', data['test_images'])]:
        expected = batches[name][b'data'].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(
        data['train_labels'],
        np.concatenate([batches[n][b'labels'] for n in data_utils.TRAIN_FILES]))
    np.testing.assert_array_equal(data['test_labels'], batches['test_batch'][b'labels'])


def test_load_batch_accepts_str_keys_and_label_arrays(tmp_path):
    batch = raw_batch(3)
    path = tmp_path / 'batch'
    path.write_bytes(official_pickle({'data': batch[b'data'],
                                      'labels': np.array(batch[b'labels'], np.uint8)}))
    images, labels = data_utils.load_batch(str(path))
    assert images.shape == (IMAGES_PER_BATCH, 32, 32, 3)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, batch[b'labels'])


class _WritesFile:
    """Unpickling this would create `path`, were arbitrary globals allowed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


def _with(**changes):
    batch = raw_batch(1)
    batch.update({key.encode(): value for key, value in changes.items()})
    return official_pickle(batch)


def _without(key):
    batch = raw_batch(1)
    del batch[key.encode()]
    return official_pickle(batch)


def _with_label(index, value):
    labels = raw_batch(1)[b'labels']
    labels[index] = value
    return _with(labels=labels)


def _first_half(content):
    return content[:len(content) // 2]


BAD_BATCHES = {
    'truncated': (lambda: _first_half(official_pickle(raw_batch(1))), 'cannot unpickle'),
    'garbage': (lambda: b'this is not a pickle\n' * 50, 'cannot unpickle'),
    'empty': (lambda: b'', 'cannot unpickle'),
    'not a dict': (lambda: official_pickle([1, 2, 3]), 'expected a pickled dict'),
    'missing data': (lambda: _without('data'), "missing key 'data'"),
    'missing labels': (lambda: _without('labels'), "missing key 'labels'"),
    'wrong shape': (lambda: _with(data=np.zeros((IMAGES_PER_BATCH, 3071), np.uint8)), '3071'),
    'not 2-D': (lambda: _with(data=np.zeros((IMAGES_PER_BATCH, 3, 1024), np.uint8)), 'shape'),
    'float data': (lambda: _with(data=np.zeros((IMAGES_PER_BATCH, 3072), np.float32)),
                   'float32'),
    'data a list': (lambda: _with(data=[[0] * 3072] * IMAGES_PER_BATCH), 'uint8'),
    'too few labels': (lambda: _with(labels=list(range(10)) + [0] * 9), 'expected 20 labels'),
    'label 10': (lambda: _with_label(4, 10), 'label 10 at index 4'),
    'label -1': (lambda: _with_label(0, -1), 'label -1 at index 0'),
    'float labels': (lambda: _with(labels=[0.5] * IMAGES_PER_BATCH), 'integers'),
}


@pytest.mark.parametrize('case', sorted(BAD_BATCHES))
def test_load_batch_rejects_bad_data_in_one_line(tmp_path, case):
    make_content, expected_text = BAD_BATCHES[case]
    path = tmp_path / 'data_batch_1'
    path.write_bytes(make_content())
    with pytest.raises(DataError) as error:
        data_utils.load_batch(str(path))
    assert_one_line_naming(error, path)
    assert expected_text in str(error.value)


def test_load_batch_names_a_missing_file(tmp_path):
    path = tmp_path / 'nowhere' / 'data_batch_1'
    with pytest.raises(DataError, match='file not found') as error:
        data_utils.load_batch(str(path))
    assert_one_line_naming(error, path)


def test_load_batch_refuses_pickles_that_run_code(tmp_path):
    victim = tmp_path / 'created_by_unpickling'
    path = tmp_path / 'data_batch_1'
    path.write_bytes(official_pickle({b'data': _WritesFile(str(victim)), b'labels': []}))
    with pytest.raises(DataError, match='refusing to load global') as error:
        data_utils.load_batch(str(path))
    assert_one_line_naming(error, path)
    assert not victim.exists()


def test_load_cifar10_names_missing_files_and_suggests_a_fix(tmp_path):
    write_cifar_dir(tmp_path)
    (tmp_path / 'test_batch').unlink()
    with pytest.raises(DataError, match='--cifar_archive') as error:
        data_utils.load_cifar10(str(tmp_path))
    assert_one_line_naming(error, 'test_batch')
    assert 'data_batch_1' not in str(error.value)


@pytest.mark.parametrize('names', [LABEL_NAMES[:9], b'airplane', [1] * 10])
def test_load_label_names_rejects_bad_meta(tmp_path, names):
    write_cifar_dir(tmp_path)
    (tmp_path / 'batches.meta').write_bytes(official_pickle({b'label_names': names}))
    with pytest.raises(DataError, match='label_names') as error:
        data_utils.load_label_names(str(tmp_path))
    assert_one_line_naming(error, tmp_path / 'batches.meta')


# --------------------------------------------------------------------------
# ensure_cifar10
# --------------------------------------------------------------------------

def test_ensure_extracts_the_seven_files_from_a_local_archive(tmp_path, cifar_source):
    source, _, archive, md5 = cifar_source
    data_dir = tmp_path / 'new' / 'data'
    data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)
    assert_same_files(data_dir, source)  # readme.html and staging files stay out


def test_ensure_does_nothing_when_the_files_are_there(tmp_path):
    write_cifar_dir(tmp_path)
    data_utils.ensure_cifar10(str(tmp_path), archive=str(tmp_path / 'no_such.tar.gz'),
                              url='http://127.0.0.1:1/x')


def test_ensure_reports_an_unusable_data_dir(tmp_path, cifar_source):
    data_dir = tmp_path / 'a_file'
    data_dir.write_bytes(b'')
    with pytest.raises(DataError, match='cannot write the data directory') as error:
        data_utils.ensure_cifar10(str(data_dir), archive=str(cifar_source[2]))
    assert_one_line_naming(error, data_dir)


def test_ensure_rejects_a_wrong_md5_and_leaves_nothing(tmp_path, cifar_source):
    _, _, archive, md5 = cifar_source
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='MD5 mismatch: got %s, expected 0+ ' % md5) as error:
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5='0' * 32)
    assert_one_line_naming(error, archive)
    assert os.listdir(data_dir) == []


def test_ensure_names_a_missing_archive(tmp_path):
    data_dir = tmp_path / 'data'
    archive = tmp_path / 'missing.tar.gz'
    with pytest.raises(DataError, match='cannot read archive') as error:
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive))
    assert_one_line_naming(error, archive)
    assert os.listdir(data_dir) == []


def test_ensure_names_a_member_the_archive_lacks(tmp_path, cifar_source):
    source = cifar_source[0]
    archive = tmp_path / 'partial.tar.gz'
    md5 = make_archive(source, archive, skip=['test_batch'])
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='cifar-10-batches-py/test_batch') as error:
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)
    assert_one_line_naming(error, archive)
    assert os.listdir(data_dir) == []


def test_ensure_reports_an_archive_that_is_not_a_tarball(tmp_path):
    archive = tmp_path / 'cifar-10-python.tar.gz'
    archive.write_bytes(b'not gzip at all' * 100)
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='cannot extract') as error:
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive),
                                  md5=hashlib.md5(archive.read_bytes()).hexdigest())
    assert_one_line_naming(error, archive)
    assert os.listdir(data_dir) == []


def test_ensure_never_writes_outside_data_dir(tmp_path, cifar_source):
    source = cifar_source[0]
    hostile = []
    for name in ['../evil', 'cifar-10-batches-py/../../evil', 'cifar-10-batches-py/evil']:
        info = tarfile.TarInfo(name)
        info.size = 4
        hostile.append((info, b'evil'))
    link = tarfile.TarInfo('cifar-10-batches-py/test_batch')  # the real one follows
    link.type, link.linkname = tarfile.SYMTYPE, '../../evil'
    hostile.append((link, None))
    archive = tmp_path / 'hostile.tar.gz'
    md5 = make_archive(source, archive, extra_members=hostile)
    data_dir = tmp_path / 'a' / 'b' / 'data'

    data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)

    assert_same_files(data_dir, source)
    assert not (data_dir / 'test_batch').is_symlink()
    assert sorted(p.name for p in tmp_path.rglob('*evil*')) == []


def test_ensure_interrupted_mid_extraction_leaves_nothing(tmp_path, cifar_source, monkeypatch):
    _, _, archive, md5 = cifar_source
    data_dir = tmp_path / 'data'

    def copy_half_then_interrupt(src, dst, *args):
        dst.write(src.read(1000))
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, 'copyfileobj', copy_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)
    assert os.listdir(data_dir) == []


def test_ensure_interrupted_while_moving_leaves_only_whole_files(tmp_path, cifar_source,
                                                                 monkeypatch):
    source, _, archive, md5 = cifar_source
    data_dir = tmp_path / 'data'
    real_replace = os.replace
    moves = []

    def replace_three_then_interrupt(src, dst):
        if len(moves) == 3:
            raise KeyboardInterrupt
        moves.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace_three_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)
    left = sorted(os.listdir(data_dir))
    assert len(left) == 3 and set(left) <= set(ALL_FILES)
    for name in left:
        assert (data_dir / name).read_bytes() == (source / name).read_bytes()

    monkeypatch.setattr(os, 'replace', real_replace)
    data_utils.ensure_cifar10(str(data_dir), archive=str(archive), md5=md5)
    assert_same_files(data_dir, source)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """(directory served over HTTP on 127.0.0.1, its base URL)."""
    # A proxy from the environment must not intercept the local server.
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    root = tmp_path / 'www'
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_ensure_downloads_and_checks_md5(tmp_path, cifar_source, http_root):
    source, _, archive, md5 = cifar_source
    root, base_url = http_root
    shutil.copy(archive, root / 'cifar.tgz')
    data_dir = tmp_path / 'data'
    data_utils.ensure_cifar10(str(data_dir), url=base_url + '/cifar.tgz', md5=md5)
    assert_same_files(data_dir, source)


def test_ensure_rejects_a_download_with_the_wrong_md5(tmp_path, cifar_source, http_root):
    archive = cifar_source[2]
    root, base_url = http_root
    shutil.copy(archive, root / 'cifar.tgz')
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='MD5 mismatch') as error:
        data_utils.ensure_cifar10(str(data_dir), url=base_url + '/cifar.tgz', md5='0' * 32)
    assert_one_line_naming(error, base_url + '/cifar.tgz')
    assert os.listdir(data_dir) == []


@pytest.mark.parametrize('url', ['http://127.0.0.1:1/x', None])
def test_ensure_reports_failed_downloads_with_a_hint(tmp_path, http_root, url):
    url = url or http_root[1] + '/missing.tgz'  # None: an HTTP 404
    data_dir = tmp_path / 'data'
    with pytest.raises(DataError, match='download failed.*--cifar_archive') as error:
        data_utils.ensure_cifar10(str(data_dir), url=url)
    assert_one_line_naming(error, url)
    assert os.listdir(data_dir) == []


# --------------------------------------------------------------------------
# split_validation
# --------------------------------------------------------------------------

def test_split_validation_is_deterministic_disjoint_and_sized():
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1) * np.ones((1, 32, 32, 3), np.uint8)
    labels = np.arange(50) % 10
    first = data_utils.split_validation(images, labels, 12, seed=3)
    again = data_utils.split_validation(images, labels, 12, seed=3)
    other = data_utils.split_validation(images, labels, 12, seed=4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)

    train_images, train_labels, val_images, val_labels = first
    assert train_images.shape == (38, 32, 32, 3) and val_images.shape == (12, 32, 32, 3)
    train_ids, val_ids = train_images[:, 0, 0, 0], val_images[:, 0, 0, 0]
    assert sorted(np.concatenate([train_ids, val_ids])) == list(range(50))
    np.testing.assert_array_equal(train_labels, train_ids % 10)
    np.testing.assert_array_equal(val_labels, val_ids % 10)
    assert set(val_ids) != set(other[2][:, 0, 0, 0])


def test_split_validation_of_zero_keeps_everything():
    images = np.zeros((7, 32, 32, 3), np.uint8)
    train_images, train_labels, val_images, val_labels = data_utils.split_validation(
        images, np.arange(7), 0)
    assert train_images.shape == (7, 32, 32, 3)
    assert val_images.shape == (0, 32, 32, 3) and val_labels.shape == (0,)


@pytest.mark.parametrize('num_val', [7, 8, -1])
def test_split_validation_rejects_impossible_sizes(num_val):
    with pytest.raises(ValueError, match='num_val'):
        data_utils.split_validation(np.zeros((7, 32, 32, 3), np.uint8), np.arange(7), num_val)


# --------------------------------------------------------------------------
# normalize and augment_batch
# --------------------------------------------------------------------------

def run_in_graph(build):
    """Builds `build()` in a fresh graph and runs it once; returns its value."""
    with tf.Graph().as_default():
        fetches = build()
        with v1.Session() as session:
            return session.run(fetches)


def test_normalize_cifar_matches_the_formula_as_conv_and_bias_add():
    pixels = np.random.RandomState(0).uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, (None, 4, 5, 3))
        output = data_utils.normalize(images, 'cifar')
        with v1.Session() as session:
            value = session.run(output, {images: pixels})
    expected = (pixels - np.array(data_utils.CIFAR10_MEAN)) / np.array(data_utils.CIFAR10_STD)
    np.testing.assert_allclose(value, expected, atol=1e-4)

    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {'Sub', 'Mul', 'RealDiv', 'Div', 'Add', 'AddV2'}
    assert output.op.type == 'BiasAdd'
    assert output.op.inputs[0].op.type == 'Conv2D'
    assert output.op.inputs[0].op.inputs[0] is images
    assert output.op.name.startswith('preprocess/')


def test_normalize_inception_maps_to_minus_one_one():
    pixels = np.array([0, 127.5, 255], np.float32).reshape(1, 1, 3, 1) * np.ones(3, np.float32)
    value = run_in_graph(lambda: data_utils.normalize(tf.constant(pixels), 'inception'))
    np.testing.assert_allclose(value[0, 0, :, 0], [-1, 0, 1], atol=1e-6)


def test_normalize_rejects_unknown_modes():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="'cifar' or 'inception'"):
        data_utils.normalize(tf.zeros((1, 2, 2, 3)), 'imagenet')


def distinct_images(n, size=8, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_augment_batch_with_no_pad_and_no_flip_is_identity():
    images = distinct_images(4)
    output = run_in_graph(lambda: data_utils.augment_batch(images, [0, 0], pad=0, flip=False))
    np.testing.assert_array_equal(output, images)


def test_augment_batch_outputs_are_crops_or_flips_of_their_own_input():
    images = distinct_images(32)
    pad, size = 2, images.shape[1]

    def build():
        output = data_utils.augment_batch(tf.constant(images), [7, 0], pad=pad)
        assert output.shape == images.shape
        return output

    output = run_in_graph(build)
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    offsets, flips = set(), set()
    for i in range(len(images)):
        matches = [(dy, dx, flip)
                   for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for flip in (0, 1)
                   if np.array_equal(
                       output[i],
                       padded[i, dy:dy + size, dx:dx + size][:, ::-1 if flip else 1])]
        assert matches, 'example %d is not a crop of its own padded input' % i
        offsets.add(matches[0][:2])
        flips.add(matches[0][2])
    # Rows and columns get independent offsets, and flips happen both ways.
    assert any(dy != dx for dy, dx in offsets) and flips == {0, 1}


def test_augment_batch_flips_some_but_not_all():
    images = distinct_images(64)
    output = run_in_graph(lambda: data_utils.augment_batch(images, [1, 0], pad=0))
    flipped = [np.array_equal(out, image[:, ::-1]) for out, image in zip(output, images)]
    kept = [np.array_equal(out, image) for out, image in zip(output, images)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 64


def test_cutout_fills_one_clipped_square_per_image_with_the_mean_colour():
    images = distinct_images(64, size=16)
    cut = 6
    plain, output = run_in_graph(lambda: (data_utils.augment_batch(images, [3, 1], pad=2),
                                          data_utils.augment_batch(images, [3, 1], pad=2, cutout=cut)))
    mean = np.round(data_utils.CIFAR10_MEAN).astype(np.uint8)
    sizes = []
    for before, after in zip(plain, output):
        changed = np.argwhere((before != after).any(-1))
        filled = np.argwhere((after == mean).all(-1))
        # The square is where the mean colour is (distinct_images can hold it by chance: rare).
        rows, cols = filled[:, 0], filled[:, 1]
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(filled) == height * width and height <= cut and width <= cut
        assert set(map(tuple, changed)) <= set(map(tuple, filled))
        sizes.append((height, width))
    # Whole squares inside the image, and squares clipped at a border, both occur.
    assert (cut, cut) in sizes and any(h < cut or w < cut for h, w in sizes)


def test_cutout_leaves_the_crop_and_flip_of_a_run_without_it_unchanged():
    """Same key, same crops and flips: the square is drawn from a key of its own."""
    # The crop and flip keys are the first two of a 3-way split, as they were of the 2-way
    # split before cutout existed: runs begun then resume with the same augmentation.
    keys = run_in_graph(lambda: [tf.random.experimental.stateless_split([5, 2], n) for n in (2, 3)])
    np.testing.assert_array_equal(keys[0], keys[1][:2])
    images = distinct_images(16)
    plain, output = run_in_graph(lambda: (data_utils.augment_batch(images, [5, 2], pad=2),
                                          data_utils.augment_batch(images, [5, 2], pad=2, cutout=3)))
    assert 0 < (plain != output).any(-1).sum(axis=(1, 2)).min()
    assert ((plain != output).any(-1).sum(axis=(1, 2)) <= 9).all()


# --------------------------------------------------------------------------
# input_pipeline
# --------------------------------------------------------------------------

def numbered_images(n):
    """Image i is filled with the value i, so batches show which images they hold."""
    return np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, 32, 32, 3), np.uint8)


def take_batches(images, labels, count=None, **kwargs):
    """Builds input_pipeline and returns (static shape, [(images, labels)] batches).

    count=None runs until the pipeline ends.
    """
    with tf.Graph().as_default():
        images_batch, labels_batch, initializer, feed = in_memory.input_pipeline(
            images, labels, **kwargs)
        with v1.Session() as session:
            session.run(initializer, feed())
            batches = []
            while count is None or len(batches) < count:
                try:
                    batches.append(session.run((images_batch, labels_batch)))
                except tf.errors.OutOfRangeError:
                    break
    return images_batch.shape.as_list(), batches


def test_training_pipeline_repeats_full_batches_in_new_orders():
    n = 20
    shape, batches = take_batches(numbered_images(n), np.arange(n) % 10, count=8,
                                  batch_size=5, training=True, augment=False, seed=1)
    assert shape == [5, 32, 32, 3]
    for images, labels in batches:
        assert images.dtype == np.float32 and images.shape == (5, 32, 32, 3)
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, images[:, 0, 0, 0].astype(int) % 10)
    order = np.concatenate([images[:, 0, 0, 0] for images, _ in batches]).astype(int)
    first, second = order[:n], order[n:]
    assert sorted(first) == sorted(second) == list(range(n))
    assert list(first) != list(second)


def test_training_pipeline_never_yields_a_short_batch():
    _, batches = take_batches(numbered_images(20), np.arange(20) % 10, count=12,
                              batch_size=6, training=True, seed=2)
    assert [len(labels) for _, labels in batches] == [6] * 12
    for images, _ in batches:
        assert images.min() >= 0 and images.max() <= 255


@pytest.mark.parametrize('augment', [True, False])
def test_training_pipeline_cuts_out_squares_only_when_augmenting(augment):
    _, batches = take_batches(numbered_images(20) + 1, np.arange(20) % 10, count=4, batch_size=5,
                              training=True, augment=augment, cutout=5, seed=3)
    mean = np.round(data_utils.CIFAR10_MEAN)
    filled = np.concatenate([(images == mean).all(-1).sum(axis=(1, 2)) for images, _ in batches])
    if augment:
        assert ((filled >= 1) & (filled <= 25)).all() and (filled == 25).any()
    else:
        assert not filled.any()


@pytest.mark.parametrize('training', [True, False])
def test_pipelines_run_without_autotuning(training):
    """Re-initialising an autotuned iterator waits for its tuner's sleep, up to a minute."""
    from tensorflow.core.framework import dataset_options_pb2
    with tf.Graph().as_default() as graph:
        in_memory.input_pipeline(numbered_images(4), np.arange(4), 2, training=training)
    settings = []
    for op in graph.get_operations():
        if op.type == 'OptionsDataset':
            options = dataset_options_pb2.Options()
            options.ParseFromString(op.get_attr('serialized_options'))
            settings.append(options.autotune_options.HasField('enabled')
                            and not options.autotune_options.enabled)
    assert settings == [True]


def test_eval_pipeline_yields_each_image_once_then_stops():
    n = 23
    shape, batches = take_batches(numbered_images(n), np.arange(n) % 10,
                                  batch_size=10, training=False)
    assert shape == [None, 32, 32, 3]
    assert [len(labels) for _, labels in batches] == [10, 10, 3]
    ids = np.concatenate([images[:, 0, 0, 0] for images, _ in batches])
    np.testing.assert_array_equal(ids, np.arange(n))
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in batches]),
                                  np.arange(n) % 10)


@pytest.mark.parametrize('training', [True, False])
def test_pipeline_resizes_to_image_size(training):
    shape, batches = take_batches(numbered_images(8), np.arange(8), count=1, batch_size=4,
                                  training=training, image_size=64, seed=0)
    assert shape[1:] == [64, 64, 3]
    assert batches[0][0].shape == (4, 64, 64, 3)


def test_pipeline_feeds_data_instead_of_embedding_it():
    images = np.random.RandomState(0).randint(0, 256, (1000, 32, 32, 3)).astype(np.uint8)
    assert images.nbytes > 2 * 2 ** 20
    with tf.Graph().as_default() as graph:
        *_, feed = in_memory.input_pipeline(images, np.arange(1000) % 10, batch_size=10,
                                             training=True, image_size=64)
    assert {p.dtype.name: value.nbytes for p, value in feed().items() if hasattr(value, 'nbytes')} \
        == {'uint8': images.nbytes, 'int64': 8000}
    assert graph.as_graph_def().ByteSize() < 2 ** 20


def test_training_pipeline_resumes_mid_epoch_and_differs_between_epochs():
    """feed(epoch, k) yields what batch k+1 of that epoch was, augmentation included."""
    images = distinct_images(40, size=32)
    with tf.Graph().as_default():
        batch, _, initializer, feed = in_memory.input_pipeline(images, np.arange(40) % 10, 8,
                                                                training=True, seed=5)
        with v1.Session() as session:
            def take(epoch, skip, count):
                session.run(initializer, feed(epoch, skip))
                return [session.run(batch) for _ in range(count)]
            whole, resumed, next_epoch = take(0, 0, 4), take(0, 2, 2), take(1, 0, 4)
    for a, b in zip(whole[2:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[0], next_epoch[0])
