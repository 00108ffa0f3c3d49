"""What a split is: arrays held in memory (Arrays: CIFAR-10), image files (Files) or TFRecord
shards (Records), and its size."""
import collections
import os

from preflight.errors import DataError


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')

# A split's folder (folder datasets) or the word in its shards' names (TFRecords).
SPLIT_NAMES = dict(train=('train',), val=('validation', 'val'), test=('test',))

CACHED_SIZE = 32  # --image_size at which a split is decoded into memory

# A split held in memory: uint8 [N, H, W, 3] images and int64 [N] labels.
Arrays = collections.namedtuple('Arrays', ['images', 'labels'])

# A split read from image files: paths (str) and int64 labels.
Files = collections.namedtuple('Files', ['paths', 'labels'])

# A split read from TFRecord shards, and the records of each (a tuple of ints).
Records = collections.namedtuple('Records', ['shards', 'counts'])


def split_size(split):
    """The number of images of a split: Arrays, Files or Records (or an array of images)."""
    if isinstance(split, Records):
        return sum(split.counts)
    if isinstance(split, Files):
        return len(split.paths)
    if isinstance(split, Arrays):
        return len(split.labels)
    return len(split)


def listdir(folder):
    """The sorted names in `folder`; DataError naming it when it cannot be read."""
    try:
        return sorted(os.listdir(folder))
    except OSError as e:
        raise DataError('%s: cannot read this folder (%s)' % (folder, e.strerror or e)) from e
