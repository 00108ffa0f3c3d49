"""Your own images: a folder of class subfolders, or TF-Slim's TFRecords, as train.py's splits.

    --dataset folder --data_dir DIR     DIR/<class>/<image>, as Keras's image_dataset_from_directory
                                        and torchvision's ImageFolder read it; or DIR/train/<class>/
                                        with DIR/validation/ (or val/) and DIR/test/ when present
    --dataset tfrecord --data_dir DIR   TF-Slim's shards (*train*, *validation*, *test*) with its
                                        features and labels.txt, as download_and_convert_data.py
                                        and slim's ImageNet scripts write them

Class names are the folder names, sorted (labels.txt's for TFRecords). Images are JPEG, PNG,
BMP or GIF (its first frame) of any size, colour or greyscale, decoded to the 8-bit RGB a
viewer shows (image_decoding.py: EXIF orientation, 16 bits, palettes, CMYK); other files
(.DS_Store, Thumbs.db, notes) are ignored. A split is either decoded into memory at 32x32
(--image_size 32: CIFAR-10's augmentation, as the pickles) or, at any other size, streamed
from its files by image_pipeline.py. An image that does not decode is skipped, counted and
named (skipped_images), never the end of a run.
"""
import collections
import os
import re
import struct
import threading

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import image_decoding
from data_utils import DataError

DATASETS = ('cifar10', 'folder', 'tfrecord')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
# A split's folder (folder datasets) or the word in its shards' names (TFRecords).
SPLIT_NAMES = dict(train=('train',), val=('validation', 'val'), test=('test',))
CACHED_SIZE = 32  # --image_size at which a split is decoded into memory
LABELS_FILE = 'labels.txt'

# A split read from image files: paths (str) and int64 labels.
Files = collections.namedtuple('Files', ['paths', 'labels'])
# A split read from TFRecord shards, and the records of each (a tuple of ints).
Records = collections.namedtuple('Records', ['shards', 'counts'])

_skipped = {}  # name -> why, of the images that did not decode, in this process
_skipped_lock = threading.Lock()


def skipped_images():
    """{name: why} of every image skipped so far because it did not decode."""
    with _skipped_lock:
        return dict(_skipped)


def forget_skipped_images():
    """A new run's count starts from nothing (a notebook or test may train more than once)."""
    with _skipped_lock:
        _skipped.clear()


def split_size(split):
    """The number of images of a split: an array, Files or Records."""
    if isinstance(split, Records):
        return sum(split.counts)
    if isinstance(split, Files):
        return len(split.paths)
    return len(split)


def class_counts(images, labels, num_classes):
    """Images of each class in a split: from its labels, or for Records by reading them (in
    eager mode, as load_data runs)."""
    if isinstance(images, Records):
        dataset = tf.data.Dataset.from_tensor_slices(images.shards).flat_map(
            shard_records).map(lambda shard, index, record: tf.io.parse_single_example(
                record, FEATURES)['image/class/label'])
        labels = np.concatenate(list(dataset.batch(4096).as_numpy_iterator()))
    elif isinstance(images, Files):
        labels = images.labels
    labels = np.asarray(labels)
    return np.bincount(labels[(labels >= 0) & (labels < num_classes)], minlength=num_classes)


# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------

def _listdir(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError as e:
        raise DataError('%s: cannot read this folder (%s)' % (folder, e.strerror or e)) from e


def class_names(root):
    """The sorted class subfolders of `root`; DataError unless there are at least two."""
    names = [n for n in _listdir(root) if not n.startswith('.')
             and os.path.isdir(os.path.join(root, n))]
    if not names:
        raise DataError('%s: no class subfolders; put each class\'s images in a folder of its own, '
                        'e.g. %s' % (root, os.path.join(root, 'cat', '0001.jpg')))
    if len(names) == 1:
        raise DataError('%s: only one class folder (%s); a classifier needs at least two'
                        % (root, names[0]))
    return names


def scan_folder(root, names, every_class=True):
    """Files of `root`/<name>/ for each of `names` (label = index); DataError for an empty or,
    with every_class, a missing class folder."""
    paths, labels = [], []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            if every_class:
                raise DataError('%s: class folder missing' % folder)
            continue
        images = [f for f in _listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)
                  and not f.startswith('.') and os.path.isfile(os.path.join(folder, f))]
        if not images and every_class:
            raise DataError('%s: no images (JPEG, PNG, BMP or GIF) in this class folder'
                            % folder)
        paths += [os.path.join(folder, f) for f in images]
        labels += [label] * len(images)
    return Files(paths, np.array(labels, np.int64))


def _split_folder(root, split):
    for name in SPLIT_NAMES[split]:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def load_folder(root, val_size=0, test_size=0, seed=0):
    """{'train', 'val', 'test': Files, 'label_names'} of a folder dataset; `val_size` and
    `test_size` images are held out (seeded) where DIR has no validation/ or test/ folder."""
    if not os.path.isdir(root):
        raise DataError('%s: no such folder (pass --data_dir, a folder of class subfolders)' % root)
    train_root = _split_folder(root, 'train')
    if train_root is None:
        names = class_names(root)
        every = scan_folder(root, names)
        train, val, test = _carve(every, val_size, test_size, seed, root)
    else:
        names = class_names(train_root)
        train = scan_folder(train_root, names)
        splits = {}
        for split in ('val', 'test'):
            folder = _split_folder(root, split)
            splits[split] = Files([], np.zeros(0, np.int64))
            if folder is not None:
                _check_same_classes(folder, names)
                splits[split] = scan_folder(folder, names, every_class=False)
        val, test = splits['val'], splits['test']
        for flag, size, split in (('val_size', val_size, val), ('test_size', test_size, test)):
            if size and len(split.paths):
                raise DataError('--%s %d: %s has its own %s folder already; pass --%s 0'
                                % (flag, size, root, flag[:-5], flag))
        if val_size or test_size:
            train, carved_val, carved_test = _carve(train, val_size, test_size, seed, root)
            val = val if len(val.paths) else carved_val
            test = test if len(test.paths) else carved_test
    return dict(train=train, val=val, test=test, label_names=names)


def _check_same_classes(folder, names):
    extra = sorted(set(n for n in _listdir(folder) if os.path.isdir(os.path.join(folder, n))
                       and not n.startswith('.')) - set(names))
    if extra:
        raise DataError('%s: class folder(s) %s not in the training set' % (folder, ', '.join(extra)))


def _carve(files, val_size, test_size, seed, root):
    """(train, val, test) Files: val_size and test_size images held out, the same for a seed."""
    if val_size + test_size >= len(files.paths):
        raise DataError('%s: --val_size %d and --test_size %d leave no training images (there are '
                        '%d)' % (root, val_size, test_size, len(files.paths)))
    order = np.random.RandomState(seed).permutation(len(files.paths))
    parts = np.split(order, [val_size, val_size + test_size])
    val, test, train = (Files([files.paths[i] for i in np.sort(p)], files.labels[np.sort(p)])
                        for p in parts)
    return train, val, test


# --------------------------------------------------------------------------
# TF-Slim TFRecords
# --------------------------------------------------------------------------

FEATURES = {
    'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
    'image/class/label': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
}


def read_labels_file(root):
    """Class names from slim's labels.txt ('0:name' lines), in label order."""
    path = os.path.join(root, LABELS_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise DataError('%s: cannot read it (%s); TF-Slim writes one "0:name" line per class'
                        % (path, e.strerror or e)) from e
    names = {}
    for number, line in enumerate(lines, 1):
        index, sep, name = line.partition(':')
        if not sep or not index.strip().isdigit() or not name:
            raise DataError('%s: line %d is not "label:name": %r' % (path, number, line))
        names[int(index)] = name
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise DataError('%s: labels must be 0, 1, ... with no gaps, two classes at least; got %s'
                        % (path, sorted(names)))
    return [names[i] for i in range(len(names))]


def _shards(root, split):
    """The files of a split: those whose names hold the word 'train', else 'validation' (or
    'val'), else 'test', between '_', '-' or '.' (slim's cifar10_train.tfrecord,
    flowers_validation_00000-of-00005.tfrecord, ImageNet's train-00000-of-01024)."""
    for word in SPLIT_NAMES[split]:
        pattern = re.compile(r'(^|[_.-])%s([_.-]|$)' % word)
        found = sorted(os.path.join(root, f) for f in _listdir(root)
                       if pattern.search(f) and os.path.isfile(os.path.join(root, f))
                       and not f.endswith(('.txt', '.json')))
        if found:
            return found
    return []


def _op_message(error, limit=200):
    """A TensorFlow error's own words, without its '{{function_node ...}}' and '[Op:...]' parts."""
    text = re.sub(r'\{\{[^}]*\}\}|\s*\[Op:[^\]]*\]?( name: ?\S*)?', '', error.message)
    return ' '.join(text.split())[:limit]


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data):
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _count_by_headers(path):
    """Records of a TFRecord file from its length headers alone (each checked against its
    CRC), seeking past the payloads; None where the framing does not add up to the file."""
    size = tf.io.gfile.stat(path).length
    count = position = 0
    # Python's own file for local paths: ten times gfile's speed at a read and a seek a record.
    with (tf.io.gfile.GFile(path, 'rb') if '://' in path else open(path, 'rb')) as f:
        while position < size:
            header = f.read(12)
            if len(header) < 12:
                return None
            length, crc = struct.unpack('<QI', header)
            if crc != _masked_crc32c(header[:8]):
                return None
            position += 12 + length + 4
            if position > size:
                return None
            f.seek(position)
            count += 1
    return count


def count_records(shards, desc):
    """The records of each shard, a tuple. TFRecords have no index: the length headers are read,
    skipping the images (a dataset of ImageNet's size counts in seconds); a file whose framing
    does not add up is read through, so TensorFlow's own error names what is wrong with it."""
    counts = []
    for shard in tqdm(shards, desc='counting %s records' % desc, unit='shard', leave=False,
                      disable=len(shards) < 64):
        try:
            count = _count_by_headers(shard)
            if count is None:
                count = int(tf.data.TFRecordDataset(shard).reduce(np.int64(0), lambda n, _: n + 1))
        except tf.errors.OpError as e:
            raise DataError('%s: not a readable TFRecord file (%s)' % (shard, _op_message(e))) from e
        counts.append(count)
    return tuple(counts)


def load_tfrecord(root):
    """{'train', 'val', 'test': Records, 'label_names'} of TF-Slim's TFRecord layout."""
    if not os.path.isdir(root):
        raise DataError('%s: no such folder (pass --data_dir, a folder of TFRecord shards)' % root)
    names = read_labels_file(root)
    data = dict(label_names=names)
    train = _shards(root, 'train')
    if not train:
        raise DataError('%s: no training shards (files with "train" in their names, as TF-Slim '
                        'writes them)' % root)
    for split in ('train', 'val', 'test'):
        shards = train if split == 'train' else _shards(root, split)
        data[split] = Records(shards, count_records(shards, split))
    if not split_size(data['train']):
        raise DataError('%s: the training shards hold no records' % root)
    return data


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

def _decode_eagerly(source, name, label, num_classes, is_path):
    """(uint8 [H, W, 3], ok): inside tf.py_function, so a bad or unreadable image is caught and
    named; `source` is the encoded bytes, or with is_path the file that holds them."""
    key = name.numpy().decode('utf-8', 'replace')
    with _skipped_lock:
        if key in _skipped:  # known bad: not decoded (and complained about) every epoch
            return tf.zeros([1, 1, 3], tf.uint8), False
    if 0 <= int(label) < int(num_classes):
        try:
            return (image_decoding.read_rgb(source.numpy().decode('utf-8')) if is_path else
                    image_decoding.to_rgb(source.numpy())), True
        except image_decoding.ImageError as e:
            why = str(e)
    else:
        why = 'label %d is not one of the %d classes' % (label, num_classes)
    with _skipped_lock:
        _skipped[key] = why
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


def parse_record(shard, index, record):
    """(encoded bytes, '<shard>#<index>', label) of one record of TF-Slim's features."""
    features = tf.io.parse_single_example(record, FEATURES)
    name = tf.strings.join([shard, tf.strings.as_string(index)], '#')
    return features['image/encoded'], name, features['image/class/label']


def shard_records(shard):
    """(shard, index, serialized record) of every record of one TFRecord file."""
    return tf.data.TFRecordDataset(shard).enumerate().map(
        lambda index, record: (shard, index, record))


def elements(split):
    """A dataset of (source, name, label) over a Files or Records split, in order: the source
    is the file's path for Files (decode(..., is_path=True) reads it), the bytes for Records."""
    if isinstance(split, Records):
        dataset = tf.data.Dataset.from_tensor_slices(split.shards)
        return dataset.flat_map(shard_records).map(parse_record)
    dataset = tf.data.Dataset.from_tensor_slices((split.paths, split.labels))
    return dataset.map(lambda path, label: (path, path, label))


def resize_to_cache(image):
    """uint8 CACHED_SIZE x CACHED_SIZE: as is when already that size, else area-resized."""
    size = [CACHED_SIZE, CACHED_SIZE]
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(same, lambda: tf.image.resize_with_crop_or_pad(image, *size),
                   lambda: tf.cast(tf.round(tf.clip_by_value(
                       tf.image.resize(image, size, antialias=True), 0, 255)), tf.uint8))


def decode_into_memory(split, num_classes, desc):
    """(uint8 [N, 32, 32, 3], int64 [N]) of a Files or Records split, decoded in parallel;
    images that do not decode are left out (and named in skipped_images())."""
    is_path = isinstance(split, Files)

    def load(source, name, label):
        image, ok = decode(source, name, label, num_classes, is_path)
        return resize_to_cache(image), label, ok

    dataset = elements(split).map(load, num_parallel_calls=os.cpu_count() or 2, deterministic=True)
    count = split_size(split)
    images, labels = [], []
    with tqdm(total=count, desc='decoding %s images' % desc, unit='img', leave=False,
              disable=count < 2000) as bar:
        for image, label, ok in dataset.batch(256).as_numpy_iterator():
            images.append(image[ok])
            labels.append(label[ok])
            bar.update(len(ok))
    if not images:
        return np.zeros((0, CACHED_SIZE, CACHED_SIZE, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
