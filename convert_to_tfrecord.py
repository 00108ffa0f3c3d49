"""Write a folder dataset as TF-Slim's TFRecord shards, for `train.py --dataset tfrecord`.

    python3 convert_to_tfrecord.py photos/ photos_tfrecord/ --shards 8
    python3 train.py --dataset tfrecord --data_dir photos_tfrecord/ --image_size 224 --stem imagenet

Reads DIR as train.py --dataset folder does (DIR/train/, DIR/validation/ or val/, DIR/test/,
or class folders directly, all of it training then) and writes OUT/<name>_<split>_<i>-of-<n>
.tfrecord with slim's features (image/encoded: the file's own bytes, image/format,
image/class/label, image/height, image/width, and image/filename as slim's ImageNet scripts)
and OUT/labels.txt ('0:name' lines). Images that do not decode are left out and named.
Everything is written to a hidden folder first and moved into OUT at the end: an interrupted
conversion leaves nothing half-written behind.
"""
import os
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from preflight import cpu_kernels

cpu_kernels.import_tensorflow()  # before the imports below bring it in with its notice

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from datasets import image_files
from datasets import image_folder
from datasets import sources
from datasets import tfrecords
from preflight import command_line
from preflight import errors
from preflight import files

# The names slim's download_and_convert scripts give the splits.
SPLIT_WORDS = dict(train='train', val='validation', test='test')
_FORMATS = {'.jpg': 'jpeg', '.jpeg': 'jpeg', '.png': 'png', '.bmp': 'bmp', '.gif': 'gif'}


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def example(path, label):
    """A tf.train.Example of one image file, or None if it does not decode."""
    with open(path, 'rb') as f:
        encoded = f.read()
    try:
        shape = image_files.to_rgb(encoded).shape  # as training will see it
    except errors.ImageError:
        return None
    return tf.train.Example(features=tf.train.Features(feature={
        'image/encoded': _feature(encoded),
        'image/format': _feature(_FORMATS[os.path.splitext(path)[1].lower()].encode()),
        'image/class/label': _feature(int(label)),
        'image/height': _feature(int(shape[0])),
        'image/width': _feature(int(shape[1])),
        'image/filename': _feature(os.path.basename(path).encode('utf-8')),
    }))


def convert(data_dir, out_dir, shards, name, seed=0):
    """{split: records written}; the images that did not decode are returned as a list too."""
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
        with open(os.path.join(staging, tfrecords.LABELS_FILE), 'w', encoding='utf-8') as f:
            f.writelines('%d:%s\n' % (i, label) for i, label in enumerate(splits['label_names']))
    return written, bad


def main(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('data_dir', help='folder dataset (class subfolders, or train/ etc.)')
    parser.add_argument('out_dir', help='folder for the shards and labels.txt (created)')
    parser.add_argument('--shards', type=int, default=4,
                        help='shards per split (default: %(default)s; fewer if fewer images)')
    parser.add_argument('--name', default='dataset',
                        help="the shards' name prefix (default: %(default)s)")
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the order the images are written in (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error('--shards must be 1 or more, got %d' % args.shards)
    words = [w for words in sources.SPLIT_NAMES.values() for w in words
             if re.search(r'(^|[_.-])%s([_.-]|$)' % w, args.name)]
    if words or not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]*', args.name):
        parser.error('--name %r: use letters, digits, _ . - and none of the split words %s as a '
                     'word of its own (the shards are found by them)'
                     % (args.name, ', '.join(w for ws in sources.SPLIT_NAMES.values() for w in ws)))
    if os.path.isdir(args.out_dir) and any(f.endswith('.tfrecord') for f in os.listdir(args.out_dir)):
        parser.error('%s already holds .tfrecord files; pass an empty or new folder' % args.out_dir)
    return errors.run_program('convert_to_tfrecord.py', lambda: _convert(args))


def _convert(args):
    try:
        written, bad = convert(args.data_dir, args.out_dir, args.shards, args.name, args.seed)
    except OSError as e:
        raise errors.UsageError('%s: %s' % (e.filename or args.out_dir, e.strerror or e)) from e
    for path in bad:
        print('skipped (does not decode): %s' % path, file=sys.stderr)
    print('wrote %s to %s' % (', '.join('%d %s records' % (n, s) for s, n in written.items()),
                              args.out_dir))

if __name__ == '__main__':
    sys.exit(main())
