"""Images decoded in the graph: an image that does not decode is skipped, counted and named.

decode() wraps the Pillow decoder (image_files.py) in tf.py_function; skipped_images() is the
process's record of what was skipped and why. decode_into_memory() holds a split at 32x32.
"""
import os
import threading

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from datasets import image_files
from datasets import sources
from datasets import tfrecords
from preflight import errors


_skipped = {}  # name -> why, of the images that did not decode, in this process

_skipped_lock = threading.Lock()

# Every decode asked for in this process, 'decoded' or 'skipped' (a known-bad image each time):
# a stretch of training in which none decoded trained on nothing.
_tried = dict(decoded=0, skipped=0)


def skipped_images():
    """{name: why} of every image skipped so far because it did not decode."""
    with _skipped_lock:
        return dict(_skipped)


def decodes_tried():
    """{'decoded': n, 'skipped': n}: the decodes asked for so far in this process."""
    with _skipped_lock:
        return dict(_tried)


def forget_skipped_images():
    """A new run's count starts from nothing (a notebook or test may train more than once)."""
    with _skipped_lock:
        _skipped.clear()
        _tried.update(decoded=0, skipped=0)


def record_skipped(name, why):
    """Records an image skipped for `why` (a reader other than decode() found it bad)."""
    with _skipped_lock:
        _skipped[name] = why
        _tried['skipped'] += 1


def record_decoded():
    with _skipped_lock:
        _tried['decoded'] += 1


def known_bad(name):
    """Whether `name` was skipped before (counted again, not decoded again)."""
    with _skipped_lock:
        if name in _skipped:
            _tried['skipped'] += 1
            return True
    return False


def class_counts(images, labels, num_classes):
    """Images of each class in a split: from its labels, or for Records by reading them (in
    eager mode, as load_data runs)."""
    if isinstance(images, sources.Records):
        dataset = tf.data.Dataset.from_tensor_slices(images.shards).flat_map(
            tfrecords.shard_records).map(lambda shard, index, record: tf.io.parse_single_example(
                record, tfrecords.FEATURES)['image/class/label'])
        labels = np.concatenate(list(dataset.batch(4096).as_numpy_iterator()))
    elif isinstance(images, sources.Files):
        labels = images.labels
    labels = np.asarray(labels)
    return np.bincount(labels[(labels >= 0) & (labels < num_classes)], minlength=num_classes)


def _decode_eagerly(source, name, label, num_classes, is_path):
    """(uint8 [H, W, 3], ok): inside tf.py_function, so a bad or unreadable image is caught and
    named; `source` is the encoded bytes, or with is_path the file that holds them."""
    key = name.numpy().decode('utf-8', 'replace')
    with _skipped_lock:
        if key in _skipped:  # known bad: not decoded (and complained about) every epoch
            _tried['skipped'] += 1
            return tf.zeros([1, 1, 3], tf.uint8), False
    if int(label) == tfrecords.DAMAGED:
        why = 'a damaged record: its checksum does not match its bytes'
    elif 0 <= int(label) < int(num_classes):
        try:
            image = (image_files.read_rgb(os.fsdecode(source.numpy())) if is_path else
                     image_files.to_rgb(source.numpy()))
            with _skipped_lock:
                _tried['decoded'] += 1
            return image, True
        except errors.ImageError as e:
            why = str(e)
    else:
        why = 'label %d is not one of the %d classes' % (label, num_classes)
    with _skipped_lock:
        _skipped[key] = why
        _tried['skipped'] += 1
    return tf.zeros([1, 1, 3], tf.uint8), False


def decode(source, name, label, num_classes, is_path=False):
    """Graph op: (image uint8 [H, W, 3], ok bool) from encoded bytes (or, with is_path, the file
    holding them); an unreadable or bad image, or a label outside 0..num_classes-1, gives ok
    False and is recorded under `name` in skipped_images()."""
    image, ok = tf.py_function(_decode_eagerly, [source, name, label, num_classes, is_path],
                               [tf.uint8, tf.bool])
    image.set_shape([None, None, 3])
    ok.set_shape([])
    return image, ok


def tf_paths(paths):
    """Paths as TensorFlow takes them: the bytes the file system names them by, so that a name
    that is not UTF-8 reads as it is (os.fsdecode gives the path back)."""
    return np.array([os.fsencode(path) for path in paths], dtype=object)


def elements(split):
    """A dataset of (source, name, label) over a Files or Records split, in order: the source
    is the file's path for Files (decode(..., is_path=True) reads it), the bytes for Records."""
    if isinstance(split, sources.Records):
        dataset = tf.data.Dataset.from_tensor_slices(split.shards)
        return dataset.flat_map(tfrecords.shard_records).map(tfrecords.parse_record)
    dataset = tf.data.Dataset.from_tensor_slices((tf_paths(split.paths), split.labels))
    return dataset.map(lambda path, label: (path, path, label))


def resize_to_cache(image):
    """uint8 CACHED_SIZE x CACHED_SIZE: as is when already that size, else area-resized."""
    size = [sources.CACHED_SIZE, sources.CACHED_SIZE]
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(same, lambda: tf.image.resize_with_crop_or_pad(image, *size),
                   lambda: tf.cast(tf.round(tf.clip_by_value(
                       tf.image.resize(image, size, antialias=True), 0, 255)), tf.uint8))


def decode_into_memory(split, num_classes, desc):
    """(uint8 [N, 32, 32, 3], int64 [N]) of a Files or Records split, decoded in parallel;
    images that do not decode are left out (and named in skipped_images())."""
    is_path = isinstance(split, sources.Files)

    def load(source, name, label):
        image, ok = decode(source, name, label, num_classes, is_path)
        return resize_to_cache(image), label, ok

    dataset = elements(split).map(load, num_parallel_calls=os.cpu_count() or 2, deterministic=True)
    count = split.num_images
    images, labels = [], []
    with tqdm(total=count, desc='decoding %s images' % desc, unit='img', leave=False,
              disable=count < 2000) as bar:
        for image, label, ok in dataset.batch(256).as_numpy_iterator():
            images.append(image[ok])
            labels.append(label[ok])
            bar.update(len(ok))
    if not images:
        return np.zeros((0, sources.CACHED_SIZE, sources.CACHED_SIZE, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
