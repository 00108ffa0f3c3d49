"""CIFAR-10 loading, validation and the TF1-style graph-mode input pipeline.

Official layout (https://www.cs.toronto.edu/~kriz/cifar.html, "python version"):
the archive cifar-10-python.tar.gz holds a directory cifar-10-batches-py/ with

    data_batch_1 .. data_batch_5   training set, 10000 images each
    test_batch                     test set, 10000 images
    batches.meta                   {b'label_names': [b'airplane', ..., b'truck'], ...}
    readme.html                    (ignored)

Each batch file is a Python 2 pickle (load with encoding='bytes') of a dict with

    b'data'    numpy uint8 array [N, 3072]; each row is one 32x32 image stored as
               three planes, 1024 red values, then 1024 green, then 1024 blue,
               each plane in row-major order
    b'labels'  list of N ints in 0..9

ensure_cifar10() puts those seven files, flat, into a data directory;
the loaders return images as uint8 NHWC [N, 32, 32, 3] and labels as int64 [N].
"""

import hashlib

import http.client

import io

import os

import pickle

import shutil

import tarfile


import urllib.request

import zlib

import numpy as np

import tensorflow as tf

from tqdm import tqdm
from preflight import errors
from preflight import files



CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'

CIFAR10_MD5 = 'c58f30108f718f92721af3b95e74349a'

TRAIN_FILES = ['data_batch_%d' % i for i in range(1, 6)]

TEST_FILE = 'test_batch'

META_FILE = 'batches.meta'

NUM_CLASSES = 10

# The widely published per-channel statistics of the training set
# ((0.4914, 0.4822, 0.4465) and (0.2470, 0.2435, 0.2616) in 0..1 units), kept
# so that results and exported models stay comparable with other CIFAR work.
CIFAR10_MEAN = (125.307, 122.961, 113.8575)

CIFAR10_STD = (62.985, 62.0925, 66.708)

_ARCHIVE_DIR = 'cifar-10-batches-py'

_ALL_FILES = TRAIN_FILES + [TEST_FILE, META_FILE]

IMAGE_SHAPE = (32, 32, 3)

_PIXELS_PER_IMAGE = 32 * 32 * 3

_DOWNLOAD_TIMEOUT_S = 60

_ARCHIVE_HINT = ('pass a local copy of cifar-10-python.tar.gz with --cifar_archive PATH, '
                 'or put the CIFAR-10 python files in %s')

def _one_line(error):
    """An exception as 'Type: message' on a single line, for DataError texts."""
    return ' '.join(('%s: %s' % (type(error).__name__, error)).split())

def missing_files(data_dir):
    """The official files not (yet) in data_dir."""
    return [name for name in _ALL_FILES
            if not os.path.isfile(os.path.join(data_dir, name))]

def ensure_cifar10(data_dir, archive=None, url=CIFAR10_URL, md5=CIFAR10_MD5):
    """Make sure the seven CIFAR-10 python files are in `data_dir`.

    Uses the local `archive` (a cifar-10-python.tar.gz) when given, else
    downloads `url`; either way the archive must match `md5`. Raises DataError.
    """
    missing = missing_files(data_dir)
    if not missing:
        return
    # Everything is staged in a private directory inside data_dir (preflight/files.py): each
    # file moves in whole, and data_dir never holds a half-written file that load_cifar10
    # would later trip over.
    try:
        os.makedirs(data_dir, exist_ok=True)
        with files.staged_folder(data_dir, prefix='.cifar-10-staging-') as staging:
            _stage_cifar10(data_dir, staging, missing, archive, url, md5)
    except OSError as e:
        raise errors.DataError('%s: cannot write the data directory (%s)'
                               % (data_dir, _one_line(e))) from e


def _stage_cifar10(data_dir, staging, missing, archive, url, md5):
    """The seven files in `staging`, from `archive` or a download checked against `md5`."""
    if archive is None:
        downloaded = os.path.join(staging, 'cifar-10-python.tar.gz.part')
        try:
            _download(url, downloaded, data_dir)
        except errors.DataError as e:
            if len(missing) == len(_ALL_FILES):
                raise
            # Most of the set is there: what is missing is the news, not the download.
            raise errors.DataError('%s: CIFAR-10 file(s) %s missing (the others are there), '
                                   'and fetching them again failed: %s'
                                   % (data_dir, ', '.join(missing), e)) from e
        # The downloaded file is deleted on the way out, so name the URL.
        _check_md5(downloaded, md5, url,
                   'corrupt or incomplete download; retry, or ' + _ARCHIVE_HINT % data_dir)
        _extract_members(downloaded, staging)
        os.remove(downloaded)
    else:
        _check_md5(archive, md5, archive,
                   'not the official cifar-10-python.tar.gz, or a corrupt or incomplete copy')
        _extract_members(archive, staging)


def _download(url, path, data_dir):
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, \
                open(path, 'wb') as out:
            total = int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024,
                      desc='Downloading CIFAR-10') as progress:
                for chunk in iter(lambda: response.read(1 << 20), b''):
                    out.write(chunk)
                    progress.update(len(chunk))
    # URLError, HTTPError and socket timeouts are all OSErrors; HTTPException
    # covers protocol failures such as a broken chunked transfer.
    except (OSError, http.client.HTTPException) as e:
        raise errors.DataError('%s: download failed (%s); %s'
                        % (url, _one_line(e), _ARCHIVE_HINT % data_dir)) from e

def _check_md5(path, expected, shown_name, hint):
    digest = hashlib.md5()
    try:
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
    except OSError as e:
        raise errors.DataError('%s: cannot read archive (%s)' % (shown_name, _one_line(e))) from e
    if digest.hexdigest() != expected:
        raise errors.DataError('%s: MD5 mismatch: got %s, expected %s (%s)'
                        % (shown_name, digest.hexdigest(), expected, hint))

def _extract_members(archive, dest_dir):
    """Copies the seven expected regular-file members into dest_dir.

    Members are matched by exact name and written under names we choose, never
    via tarfile's extract(), so '../' paths, absolute paths and links in the
    archive can never write outside dest_dir; everything else is ignored.
    """
    wanted = {'%s/%s' % (_ARCHIVE_DIR, name): name for name in _ALL_FILES}
    try:
        # Iterating the open archive reads the gzip stream once, front to back.
        with tarfile.open(archive, 'r:gz') as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    name = wanted.pop(member.name)
                    with tar.extractfile(member) as src, \
                            open(os.path.join(dest_dir, name), 'wb') as dst:
                        shutil.copyfileobj(src, dst)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise errors.DataError('%s: cannot extract (%s)' % (archive, _one_line(e))) from e
    if wanted:
        raise errors.DataError('%s: archive lacks %s' % (archive, ', '.join(sorted(wanted))))

class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals the official pickles need.

    Unpickling can run arbitrary code, and batch files may be dropped into the
    data directory by hand; the numpy array globals are listed under both their
    NumPy 1 and NumPy 2 module names, since either may have written the file.
    """

    _ALLOWED = {
        ('_codecs', 'encode'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        # Pickle protocol 5 (arrays by buffer) and numpy integers (a list of np.int64 labels).
        ('numpy.core.numeric', '_frombuffer'),
        ('numpy._core.numeric', '_frombuffer'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError('refusing to load global %s.%s' % (module, name))
        return super().find_class(module, name)

def _unpickle_dict(path):
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except FileNotFoundError as e:
        raise errors.DataError('%s: file not found' % path) from e
    except OSError as e:
        raise errors.DataError('%s: cannot read (%s)' % (path, _one_line(e))) from e
    try:
        obj = _CifarUnpickler(io.BytesIO(content), encoding='bytes').load()
    # Damaged pickles fail in many ways (EOFError, UnpicklingError,
    # ValueError, KeyError, MemoryError, ...); each means the same to the user.
    except Exception as e:
        raise errors.DataError('%s: cannot unpickle (%s); the file is truncated, corrupt or not '
                        'a CIFAR-10 batch' % (path, _one_line(e))) from e
    if not isinstance(obj, dict):
        raise errors.DataError('%s: expected a pickled dict, got %s' % (path, type(obj).__name__))
    return obj

def _field(batch, key, path):
    # The official files have bytes keys; str keys are accepted for files
    # re-pickled under Python 3.
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise errors.DataError('%s: missing key %r' % (path, key))

def _images_from_data(data, path):
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise errors.DataError('%s: data must be a uint8 numpy array, got %s'
                        % (path, getattr(data, 'dtype', type(data).__name__)))
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != _PIXELS_PER_IMAGE:
        raise errors.DataError('%s: data has shape %s, expected [N, %d] with N >= 1'
                        % (path, data.shape, _PIXELS_PER_IMAGE))
    planes = data.reshape(-1, IMAGE_SHAPE[2], IMAGE_SHAPE[0], IMAGE_SHAPE[1])
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))

def _checked_labels(raw_labels, num_images, path):
    labels = np.asarray(raw_labels)
    if labels.shape != (num_images,):
        raise errors.DataError('%s: expected %d labels (one per image), got shape %s'
                        % (path, num_images, labels.shape))
    if not np.issubdtype(labels.dtype, np.integer):
        raise errors.DataError('%s: labels must be integers, got %s' % (path, labels.dtype))
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise errors.DataError('%s: label %d at index %d is outside 0..%d'
                        % (path, labels[bad[0]], bad[0], NUM_CLASSES - 1))
    return labels.astype(np.int64)

def load_batch(path):
    """Returns (images uint8 [N, 32, 32, 3], labels int64 [N]); raises DataError."""
    batch = _unpickle_dict(path)
    images = _images_from_data(_field(batch, 'data', path), path)
    labels = _checked_labels(_field(batch, 'labels', path), len(images), path)
    return images, labels

def load_label_names(data_dir):
    """The ten class names from batches.meta, as str; raises DataError."""
    path = os.path.join(data_dir, META_FILE)
    names = _field(_unpickle_dict(path), 'label_names', path)
    if (not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES
            or not all(isinstance(n, (bytes, str)) for n in names)):
        raise errors.DataError('%s: label_names must be a list of %d strings' % (path, NUM_CLASSES))
    return [n.decode('utf-8', 'replace') if isinstance(n, bytes) else n for n in names]

def load_cifar10(data_dir):
    """Loads the whole data set from the seven files in data_dir.

    Returns a dict with train_images, train_labels, test_images, test_labels
    (as load_batch) and label_names. Raises DataError.
    """
    missing = missing_files(data_dir)
    if missing:
        raise errors.DataError('%s: missing CIFAR-10 file(s) %s (download them with ensure_cifar10, or %s)'
                        % (data_dir, ', '.join(missing), _ARCHIVE_HINT % data_dir))
    train = [load_batch(os.path.join(data_dir, name)) for name in TRAIN_FILES]
    test_images, test_labels = load_batch(os.path.join(data_dir, TEST_FILE))
    return {
        'train_images': np.concatenate([images for images, _ in train]),
        'train_labels': np.concatenate([labels for _, labels in train]),
        'test_images': test_images,
        'test_labels': test_labels,
        'label_names': load_label_names(data_dir),
    }

def split_validation(images, labels, num_val, seed=0):
    """Holds out `num_val` random examples, the same ones for the same seed.

    Returns (train_images, train_labels, val_images, val_labels); both parts
    keep the original relative order, so num_val=0 returns the input as is.
    """
    if len(images) != len(labels):
        raise ValueError('split_validation: %d images but %d labels' % (len(images), len(labels)))
    if not 0 <= num_val < len(images):
        raise ValueError('split_validation: num_val must be in [0, %d) (the number of '
                         'training examples), got %d' % (len(images), num_val))
    order = np.random.RandomState(seed).permutation(len(images))
    val_idx = np.sort(order[:num_val])
    train_idx = np.sort(order[num_val:])
    return images[train_idx], labels[train_idx], images[val_idx], labels[val_idx]

# mode -> (per-channel scale, per-channel offset): network input = x * scale + offset.
_NORMALIZATIONS = {
    'cifar': (1.0 / np.array(CIFAR10_STD), -np.array(CIFAR10_MEAN) / np.array(CIFAR10_STD)),
    'inception': (np.full(3, 1.0 / 127.5), np.full(3, -1.0)),
}

def normalization(mode):
    """(per-channel scale, offset) of a --normalization mode: network input = x * scale + offset."""
    if mode not in _NORMALIZATIONS:
        raise ValueError("normalization: mode must be 'cifar' or 'inception', got %r" % (mode,))
    return _NORMALIZATIONS[mode]


def normalize(images, mode):
    """Maps raw float32 pixels 0..255 (NHWC) to network input.

    'cifar': (x - CIFAR10_MEAN) / CIFAR10_STD per channel.
    'inception': x / 127.5 - 1, the [-1, 1] range TF-Slim ImageNet checkpoints expect.

    Written as a 1x1 convolution with a diagonal kernel plus bias_add, because
    OpenCV's dnn importer fails on per-channel broadcast arithmetic but
    imports Conv2D + BiasAdd fine.
    """
    scale, offset = normalization(mode)
    with tf.name_scope('preprocess'):
        kernel = tf.constant(np.diag(scale).reshape(1, 1, 3, 3), tf.float32, name='scale')
        scaled = tf.nn.conv2d(images, kernel, strides=1, padding='VALID')
        return tf.nn.bias_add(scaled, tf.constant(offset, tf.float32, name='offset'))

def augment_batch(images, seed, pad=4, flip=True, cutout=0):
    """Random `pad`-pixel zero-padded crop, random horizontal flip, and cutout.

    Works on a whole batch [B, H, W, C] at once, with independent randomness
    per example, because a per-example map is too slow on a small CPU. `seed`
    is a stateless-random key (two integers): the same key, the same result,
    which is what lets a resumed run see the augmentation it would have seen.
    `cutout` > 0 fills a `cutout`-pixel square at a random centre (clipped at
    the borders, as DeVries & Taylor 2017) with CIFAR-10's mean colour, which
    the 'cifar' normalization maps to about zero.
    """
    images = tf.convert_to_tensor(images)
    crop_key, flip_key, cutout_key = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    augmented = images
    if pad:
        augmented = _random_crop(augmented, pad, crop_key)
    if flip:
        augmented = _random_flip(augmented, flip_key)
    if cutout:
        augmented = _cutout(augmented, cutout, cutout_key)
    augmented.set_shape(images.shape)
    return augmented

def _random_crop(images, pad, key):
    shape = tf.shape(images)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform([shape[0], 2], key, minval=0, maxval=2 * pad + 1,
                                          dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(shape[1])[None, :]
    cols = offsets[:, 1:] + tf.range(shape[2])[None, :]
    cropped_rows = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped_rows, cols, axis=2, batch_dims=1)

def _random_flip(images, key):
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], key) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)

def _cutout(images, size, key):
    shape = tf.shape(images)
    sides = tf.cast(shape[1:3], tf.float32)
    centres = tf.cast(tf.random.stateless_uniform([shape[0], 2], key) * sides, tf.int32)
    start = centres - size // 2
    rows = tf.range(shape[1])[None, :]
    cols = tf.range(shape[2])[None, :]
    in_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + size)
    in_cols = (cols >= start[:, 1:]) & (cols < start[:, 1:] + size)
    mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]
    fill = tf.cast(tf.round(tf.constant(CIFAR10_MEAN)), images.dtype)
    return tf.where(mask, fill, images)

