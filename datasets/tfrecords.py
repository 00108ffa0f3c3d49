"""TF-Slim's TFRecord layout: shards named *train*, *validation*, *test*, with labels.txt, read
and written (convert() is convert_to_tfrecord.py's work, all or nothing).

Records are counted from their length headers, without reading the images (the first intact
record of each shard is read to check its features); each record's checksum is checked as it
is read, and a damaged record is skipped and named in its place.
"""
import os
import re
import struct

import crc32c
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from datasets import image_files
from datasets import image_folder
from datasets import sources
from preflight import errors
from preflight import files
from preflight.errors import DataError


LABELS_FILE = 'labels.txt'

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
    except UnicodeDecodeError as e:
        raise DataError('%s: not UTF-8 text (byte 0x%02x at offset %d); save it as UTF-8'
                        % (path, e.object[e.start], e.start)) from e
    names = {}
    for number, line in enumerate(lines, 1):
        index, sep, name = line.partition(':')
        if not sep or not index.strip().isdigit() or not name:
            raise DataError('%s: line %d is not "label:name": %r' % (path, number, line))
        if int(index) in names:
            raise DataError('%s: line %d gives label %d a second name (%s, after %s)'
                            % (path, number, int(index), name, names[int(index)]))
        if name in names.values():
            raise DataError('%s: line %d names a second label %s (label %d is %s already)'
                            % (path, number, name, next(i for i, n in names.items() if n == name),
                               name))
        names[int(index)] = name
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise DataError('%s: labels must be 0, 1, ... with no gaps, two classes at least; got %s'
                        % (path, sorted(names)))
    return [names[i] for i in range(len(names))]


def _shards(root, names, split):
    """The files of a split among `names` (root's): those whose names hold the word 'train',
    else 'validation' (or 'val'), else 'test', between '_', '-' or '.' (slim's
    cifar10_train.tfrecord, flowers_validation_00000-of-00005.tfrecord, ImageNet's
    train-00000-of-01024)."""
    for word in sources.SPLIT_NAMES[split]:
        pattern = re.compile(r'(^|[_.-])%s([_.-]|$)' % word)
        found = [os.path.join(root, f) for f in names
                 if pattern.search(f) and os.path.isfile(os.path.join(root, f))
                 and not f.endswith(('.txt', '.json'))]
        if found:
            return found
    return []


def _op_message(error, limit=200):
    """A TensorFlow error's own words, without its '{{function_node ...}}' and '[Op:...]' parts."""
    text = re.sub(r'\{\{[^}]*\}\}|\s*\[Op:[^\]]*\]?( name: ?\S*)?', '', error.message)
    return ' '.join(text.split())[:limit]


def _masked_crc32c(data):
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _open(path):
    # Python's own file for local paths: ten times gfile's speed at a read and a seek a record.
    return tf.io.gfile.GFile(path, 'rb') if '://' in path else open(path, 'rb')


def _count_by_headers(path):
    """(records, why) of a TFRecord file from its length headers alone (each checked against its
    CRC), seeking past the payloads. `why` says where the framing breaks (cut short, or damaged
    there: nothing after it can be found) and is None for a whole file; read_records stops at
    the same place."""
    size = tf.io.gfile.stat(path).length
    count = position = 0
    with _open(path) as f:
        while position < size:
            header = f.read(12)
            if len(header) == 12:
                length, crc = struct.unpack('<QI', header)
                if crc != _masked_crc32c(header[:8]):
                    return count, 'its framing is damaged at byte %d' % position
            if len(header) < 12 or position + 16 + length > size:
                return count, 'it is cut short at byte %d, inside record %d' % (size, count)
            position += 16 + length
            f.seek(position)
            count += 1
    return count, None


def count_records(shards, desc):
    """The records of each shard, a tuple. TFRecords have no index: the length headers are read,
    skipping the images (a dataset of ImageNet's size counts in seconds). The records of a file
    before a break in its framing are read, and the break is noted, as is a file of none."""
    counts = []
    for shard in tqdm(shards, desc='counting %s records' % desc, unit='shard', leave=False,
                      disable=len(shards) < 64):
        try:
            count, why = _count_by_headers(shard)
        except (OSError, tf.errors.OpError) as e:
            raise DataError('%s: cannot read it (%s)' % (
                shard, getattr(e, 'strerror', None) or _op_message(e))) from e
        if why:
            print('Note: %s: %s; %s' % (shard, why, 'no record of it can be read' if not count
                                         else 'its %d records before are read' % count), flush=True)
        elif not count:
            print('Note: %s holds no records' % shard, flush=True)
        counts.append(count)
    return tuple(counts)


def load_tfrecord(root):
    """{'train', 'val', 'test': Records, 'label_names'} of TF-Slim's TFRecord layout."""
    if not os.path.isdir(root):
        raise DataError('%s: %s; a folder of TFRecord shards is read' % (
            root, 'a file, not a folder' if os.path.exists(root) else 'no such folder'))
    data = dict(label_names=read_labels_file(root))
    names = sources.listdir(root)
    train = _shards(root, names, 'train')
    if not train:
        raise DataError('%s: no training shards (files with "train" in their names, as TF-Slim '
                        'writes them)' % root)
    for split in ('train', 'val', 'test'):
        shards = train if split == 'train' else _shards(root, names, split)
        data[split] = sources.Records(shards, count_records(shards, split))
        for shard, count in zip(shards, data[split].counts):
            if count:
                _check_features(shard)
    if not data['train'].num_images:
        raise DataError('%s: the training shards hold no records' % root)
    return data


# The features every record must have, and their kind: what parse_record reads.
_REQUIRED = {'image/encoded': 'bytes_list', 'image/class/label': 'int64_list'}


def _check_features(shard):
    """DataError unless the shard's first intact record is a tf.train.Example with TF-Slim's
    image and label features (records of another schema would fail deep in the input pipeline,
    or all be skipped)."""
    index, record = next(((i, r) for i, r in enumerate(read_records(shard))
                          if r != _DAMAGED_RECORD), (None, None))
    if record is None:
        return  # every record damaged: each is named and skipped as it is read
    try:
        features = tf.train.Example.FromString(record).features.feature
    except Exception as e:  # protobuf's DecodeError
        raise DataError('%s: record %d is not a tf.train.Example (%s)' % (shard, index, e)) from e
    for key, kind in _REQUIRED.items():
        if key not in features:
            raise DataError('%s: record %d has no %s feature (it has %s); TF-Slim\'s records '
                            'hold %s' % (shard, index, key, ', '.join(sorted(features)) or 'none',
                                         ' and '.join(_REQUIRED)))
        if features[key].WhichOneof('kind') != kind:
            raise DataError('%s: record %d holds %s as %s, not %s' % (
                shard, index, key, features[key].WhichOneof('kind'), kind))


# The label of a record whose checksum does not match: decoding names it, and skips it in its
# place (the records after it keep theirs, so that a resumed epoch is the same).
DAMAGED = -2

_DAMAGED_RECORD = tf.train.Example(features=tf.train.Features(feature={
    'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[DAMAGED]))
})).SerializeToString()


def read_records(path):
    """The records of a TFRecord file, in order, as bytes; one whose payload checksum does not
    match is a record of label DAMAGED in its place. TensorFlow's reader stops at such a record
    (and asked again, fails there again); the framing was checked when the file was counted."""
    path = os.fsdecode(path)
    with _open(path) as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            length, crc = struct.unpack('<QI', header)
            if crc != _masked_crc32c(header[:8]):
                return  # not TFRecord framing any more: nothing after it can be found
            payload, footer = f.read(length), f.read(4)
            if len(payload) < length or len(footer) < 4:
                return
            yield payload if struct.unpack('<I', footer)[0] == _masked_crc32c(payload) \
                else _DAMAGED_RECORD


def parse_record(shard, index, record):
    """(encoded bytes, '<shard>#<index>', label) of one record of TF-Slim's features."""
    features = tf.io.parse_single_example(record, FEATURES)
    name = tf.strings.join([shard, tf.strings.as_string(index)], '#')
    return features['image/encoded'], name, features['image/class/label']


@tf.autograph.experimental.do_not_convert  # its Python generator runs as Python, not a graph
def shard_records(shard):
    """(shard, index, serialized record) of every record of one TFRecord file (read_records)."""
    def chunks(path):
        # A list of records at a time: the step from Python into tf.data costs per element.
        chunk = []
        for record in read_records(path):
            chunk.append(record)
            if len(chunk) == 64:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    records = tf.data.Dataset.from_generator(chunks, args=(shard,),
                                             output_signature=tf.TensorSpec([None], tf.string))
    return records.unbatch().enumerate().map(lambda index, record: (shard, index, record))


# --------------------------------------------------------------------------
# Writing (convert_to_tfrecord.py)
# --------------------------------------------------------------------------

# The names slim's download_and_convert scripts give the splits.
SPLIT_WORDS = dict(train='train', val='validation', test='test')
_FORMATS = {'.jpg': 'jpeg', '.jpeg': 'jpeg', '.png': 'png', '.bmp': 'bmp', '.gif': 'gif'}


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def example(path, label):
    """A tf.train.Example of one image file, or None if it cannot be read or does not decode
    (as training skips it)."""
    try:
        with open(path, 'rb') as f:
            encoded = f.read()
        shape = image_files.to_rgb(encoded).shape  # as training will see it
    except (OSError, errors.ImageError):
        return None
    return tf.train.Example(features=tf.train.Features(feature={
        'image/encoded': _feature(encoded),
        'image/format': _feature(_FORMATS[os.path.splitext(path)[1].lower()].encode()),
        'image/class/label': _feature(int(label)),
        'image/height': _feature(int(shape[0])),
        'image/width': _feature(int(shape[1])),
        'image/filename': _feature(os.fsencode(os.path.basename(path))),
    }))


def convert(data_dir, out_dir, shards, name, seed=0):
    """{split: records written}; the images that could not be read or did not decode are
    returned as a list too. DataError for an `out_dir` that holds a dataset already."""
    if os.path.isdir(out_dir):
        _check_no_dataset(out_dir)
    splits = image_folder.load_folder(data_dir)
    written, bad = {}, []
    with files.staged_folder(out_dir, prefix='.%s.' % os.path.basename(os.path.abspath(out_dir))) \
            as staging:
        for split in ('train', 'val', 'test'):
            files_of_split = splits[split]
            if not files_of_split.paths:
                continue
            # Shuffled once, so that every shard holds every class (slim does the same).
            order = np.random.RandomState(seed).permutation(len(files_of_split.paths))
            count = min(shards, len(order))
            writers = [tf.io.TFRecordWriter(os.path.join(
                staging, '%s_%s_%05d-of-%05d.tfrecord' % (name, SPLIT_WORDS[split], i, count)))
                for i in range(count)]
            written[split] = 0
            for index in tqdm(order, desc=split, unit='img', leave=False):
                record = example(files_of_split.paths[index], files_of_split.labels[index])
                if record is None:
                    bad.append(files_of_split.paths[index])
                    continue
                # Dealt by records written, so that the shards stay equal (for workers' shares).
                writers[written[split] % count].write(record.SerializeToString())
                written[split] += 1
            for writer in writers:
                writer.close()
            if not written[split]:  # empty shards would read as a split of nothing
                raise DataError('%s: none of the %d %s images can be read or decode (%s is one); '
                                'nothing is written' % (data_dir, len(order), split, bad[-1]))
        with open(os.path.join(staging, LABELS_FILE), 'w', encoding='utf-8') as f:
            f.writelines('%d:%s\n' % (i, label) for i, label in enumerate(splits['label_names']))
        # Another conversion into the same folder may have finished meanwhile: two shard sets
        # would both be read as one dataset.
        _check_no_dataset(out_dir)
    return written, bad


def _check_no_dataset(out_dir):
    """DataError if `out_dir` holds TFRecord shards or a labels.txt already."""
    held = [name for name in sources.listdir(out_dir) if name.endswith('.tfrecord')
            or name == LABELS_FILE]
    if held:
        raise DataError('%s already holds a TFRecord dataset (%s); pass an empty or new folder'
                        % (out_dir, ', '.join(held[:3] + ['...'] * (len(held) > 3))))
