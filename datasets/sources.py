"""What a split is: arrays held in memory (Arrays: CIFAR-10), image files (Files) or TFRecord
shards (Records). Each says how many images it holds: split.num_images."""
import collections
import os

from preflight.errors import DataError


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')

# A split's folder (folder datasets) or the word in its shards' names (TFRecords).
SPLIT_NAMES = dict(train=('train',), val=('validation', 'val'), test=('test',))

CACHED_SIZE = 32  # --image_size at which a split is decoded into memory


def split_type(name, fields, size):
    """A namedtuple of a split's fields with num_images, size(split)."""
    return type(name, (collections.namedtuple(name, fields),),
                dict(__slots__=(), num_images=property(size)))


# A split held in memory: uint8 [N, H, W, 3] images and int64 [N] labels.
Arrays = split_type('Arrays', ['images', 'labels'], lambda split: len(split.labels))

# A split read from image files: paths (str) and int64 labels.
Files = split_type('Files', ['paths', 'labels'], lambda split: len(split.paths))

# A split read from TFRecord shards, and the records of each (a tuple of ints).
Records = split_type('Records', ['shards', 'counts'], lambda split: sum(split.counts))


def listdir(folder):
    """The sorted names in `folder`; DataError naming it when it cannot be read."""
    try:
        return sorted(os.listdir(folder))
    except OSError as e:
        raise DataError('%s: cannot read this folder (%s)' % (folder, e.strerror or e)) from e
