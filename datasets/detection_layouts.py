"""What the readers of the three detection layouts share (voc_layout, coco_layout,
yolo_layout): the Boxes split they read into, the Problems they skip, and the box check.

Every box is in pixels of the image as decoded (EXIF orientation applied), [xmin, ymin, xmax,
ymax], continuous coordinates: VOC's 1-based inclusive pixels become [xmin - 1, ymin - 1, xmax,
ymax], as the devkit measures a box of xmax - xmin + 1 pixels. Bad annotations never stop a
run: each is skipped, counted by why, and named (Problems).
"""
import collections
import os

import numpy as np
from PIL import Image

from datasets import sources

# A split of a detection dataset: for each image its path, its size (height, width), its boxes
# float32 [n, 4] and their classes int64 [n], and which boxes are VOC 'difficult' or COCO
# 'iscrowd' (bool [n]): kept out of training, ignored by scoring as the devkit and COCO do.
Boxes = sources.split_type('Boxes', ['paths', 'sizes', 'boxes', 'classes', 'ignored'],
                            lambda split: len(split.paths))

LAYOUTS = ('voc', 'coco', 'yolo')

# The split folders (and COCO file suffixes) of YOLO and COCO folders; Roboflow's exports call
# the validation split valid/.
SPLIT_FOLDERS = dict(train=('train',), val=('val', 'validation', 'valid'), test=('test',))

# A box this far past the image's edge (in pixels) is a bad annotation; less is rounding, clipped.
EDGE_TOLERANCE = 2.0


class Problems:
    """What was skipped while reading a dataset: {why: [names]}, and a line on it."""

    def __init__(self):
        self.found = collections.OrderedDict()

    def add(self, why, name):
        self.found.setdefault(why, []).append(name)

    def count(self):
        return sum(len(names) for names in self.found.values())

    def lines(self, shown=3):
        return ['Skipped %d %s: %s%s' % (len(names), why, ', '.join(names[:shown]),
                                         ', ...' if len(names) > shown else '')
                for why, names in self.found.items()]

    def as_dict(self):
        return {why: len(names) for why, names in self.found.items()}


def empty_split():
    return Boxes([], [], [], [], [])


def check_box(box, size, name, problems, label=None):
    """The box clipped to the image, or None (recorded in `problems`) when it is not one: zero
    or negative size, or past the image's edge by more than EDGE_TOLERANCE pixels."""
    height, width = size
    xmin, ymin, xmax, ymax = box
    if not all(np.isfinite(box)) or xmax <= xmin or ymax <= ymin:
        problems.add('boxes of zero or negative size', name)
        return None
    if xmin < -EDGE_TOLERANCE or ymin < -EDGE_TOLERANCE or xmax > width + EDGE_TOLERANCE \
            or ymax > height + EDGE_TOLERANCE:
        problems.add('boxes outside the image', name)
        return None
    clipped = [max(xmin, 0.0), max(ymin, 0.0), min(xmax, float(width)), min(ymax, float(height))]
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        problems.add('boxes of zero or negative size', name)
        return None
    return clipped


def image_size(path):
    """(height, width) of an image file as decoded (EXIF rotation applied), from its header;
    OSError when it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as e:
        # Pillow refuses an image of over 179 megapixels with this, not an OSError: the image is
        # skipped and named as the decoder does it (image_files).
        raise OSError(str(e)) from e
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


class Builder:
    """Images added one at a time into a Boxes split."""

    def __init__(self):
        self.paths, self.sizes, self.boxes, self.classes, self.ignored = [], [], [], [], []

    def add(self, path, size, boxes, classes, ignored):
        self.paths.append(path)
        self.sizes.append(tuple(int(v) for v in size))
        self.boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        self.classes.append(np.asarray(classes, np.int64).reshape(-1))
        self.ignored.append(np.asarray(ignored, bool).reshape(-1))

    def split(self):
        return Boxes(self.paths, self.sizes, self.boxes, self.classes, self.ignored)


def first_folder(parent, names, inside=''):
    """The first of `names` that is a folder in `parent` (with `inside` in it), or None."""
    return next((n for n in names if os.path.isdir(os.path.join(parent, n))
                 and os.path.exists(os.path.join(parent, n, inside))), None)
