"""Detection datasets in the three layouts the field uses, read into Boxes splits: Pascal VOC
(VOCdevkit: JPEGImages/, Annotations/*.xml, ImageSets/Main/{train,val,test}.txt), COCO JSON
(annotations/instances_<split>*.json beside the image folders) and YOLO txt (images/, labels/
of `class cx cy w h` normalised, and a names file).

Every box is in pixels of the image as decoded (EXIF orientation applied), [xmin, ymin, xmax,
ymax], continuous coordinates: VOC's 1-based inclusive pixels become [xmin - 1, ymin - 1, xmax,
ymax], as the devkit measures a box of xmax - xmin + 1 pixels. Bad annotations never stop a
run: each is skipped, counted by why, and named (Problems).
"""
import collections
import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
from PIL import Image

from datasets import sources
from preflight.errors import DataError

# A split of a detection dataset: for each image its path, its size (height, width), its boxes
# float32 [n, 4] and their classes int64 [n], and which boxes are VOC 'difficult' or COCO
# 'iscrowd' (bool [n]): kept out of training, ignored by scoring as the devkit and COCO do.
Boxes = sources.split_type('Boxes', ['paths', 'sizes', 'boxes', 'classes', 'ignored'],
                            lambda split: len(split.paths))

LAYOUTS = ('voc', 'coco', 'yolo')

# The names file of a YOLO folder, first found first.
YOLO_NAMES = ('classes.txt', 'obj.names', 'classes.names', 'names.txt')

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
    """(height, width) of an image file as decoded (EXIF rotation applied), from its header."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


class _Builder:
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


def _text(element, tag, default=None):
    found = element.find(tag)
    return found.text.strip() if found is not None and found.text else default


# ---- Pascal VOC ----

def read_voc(data_dir, problems, class_names=None):
    """({split: Boxes}, class names) of a VOCdevkit-style folder (data_dir may be VOC2007/ or a
    folder with one such year folder). Splits from ImageSets/Main/{train,val,test}.txt; without
    them every annotated image is 'train'. Class names: `class_names`, else the names found,
    sorted."""
    root = _voc_root(data_dir)
    annotations = os.path.join(root, 'Annotations')
    listed = {}
    main = os.path.join(root, 'ImageSets', 'Main')
    for split, names in (('train', ('train.txt',)), ('val', ('val.txt',)),
                         ('test', ('test.txt',))):
        for name in names:
            path = os.path.join(main, name)
            if os.path.isfile(path):
                with open(path, encoding='utf-8') as f:
                    listed[split] = [line.split()[0] for line in f if line.strip()]
    if not listed:
        listed['train'] = [name[:-4] for name in sources.listdir(annotations)
                           if name.endswith('.xml')]
    if not any(listed.values()):
        raise DataError('%s: no annotation (Annotations/*.xml) and no image list '
                        '(ImageSets/Main/train.txt)' % root)
    parsed = {split: [_parse_voc(root, stem, problems) for stem in stems]
              for split, stems in listed.items()}
    names = class_names or sorted({obj[0] for images in parsed.values() for image in images
                                   if image for obj in image[2]})
    index = {name: i for i, name in enumerate(names)}
    splits = {}
    for split, images in parsed.items():
        builder = _Builder()
        for image in images:
            if image is None:
                continue
            path, size, objects = image
            boxes, classes, ignored = [], [], []
            for label, box, difficult in objects:
                if label not in index:
                    problems.add('boxes of an unknown class', os.path.basename(path))
                    continue
                box = check_box(box, size, os.path.basename(path), problems)
                if box is None:
                    continue
                if difficult:
                    problems.add("'difficult' boxes (left out of training, ignored in scoring)",
                                 os.path.basename(path))
                boxes.append(box)
                classes.append(index[label])
                ignored.append(difficult)
            builder.add(path, size, boxes, classes, ignored)
        splits[split] = builder.split()
    return splits, names


def _voc_root(data_dir):
    if os.path.isdir(os.path.join(data_dir, 'Annotations')):
        return data_dir
    years = [os.path.join(data_dir, name) for name in sources.listdir(data_dir)
             if os.path.isdir(os.path.join(data_dir, name, 'Annotations'))]
    if len(years) == 1:
        return years[0]
    raise DataError('--data_dir %s: not a VOC folder (one with Annotations/ and JPEGImages/%s)'
                    % (data_dir, ', or one such folder as VOC2007/' if not years else
                       '; it holds %d: pass one of them' % len(years)))


def _parse_voc(root, stem, problems):
    """(image path, (height, width), [(class, box, difficult)]) of Annotations/STEM.xml, or
    None (recorded) when the annotation or the image is missing or unreadable."""
    xml_path = os.path.join(root, 'Annotations', stem + '.xml')
    try:
        tree = ElementTree.parse(xml_path).getroot()
    except (OSError, ElementTree.ParseError):
        problems.add('images whose annotation is missing or unreadable', stem + '.xml')
        return None
    filename = _text(tree, 'filename') or stem + '.jpg'
    path = os.path.join(root, 'JPEGImages', filename)
    if not os.path.isfile(path):
        candidates = [os.path.join(root, 'JPEGImages', stem + ext)
                      for ext in ('.jpg', '.jpeg', '.png', '.JPG', '.PNG')]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            problems.add('annotations whose image is missing', stem + '.xml')
            return None
    try:
        size = tree.find('size')
        height, width = int(float(_text(size, 'height'))), int(float(_text(size, 'width')))
    except (AttributeError, TypeError, ValueError):
        height = width = 0
    if not height or not width:
        try:
            height, width = image_size(path)
        except OSError:
            problems.add('images that cannot be read', os.path.basename(path))
            return None
    objects = []
    for obj in tree.findall('object'):
        label = _text(obj, 'name', '')
        bndbox = obj.find('bndbox')
        try:
            xmin, ymin, xmax, ymax = (float(_text(bndbox, key)) for key in
                                      ('xmin', 'ymin', 'xmax', 'ymax'))
        except (AttributeError, TypeError, ValueError):
            problems.add('boxes without four numbers', os.path.basename(xml_path))
            continue
        difficult = _text(obj, 'difficult', '0').lower() in ('1', 'true')
        objects.append((label, [xmin - 1, ymin - 1, xmax, ymax], difficult))
    return path, (height, width), objects


# ---- COCO JSON ----

def read_coco(data_dir, problems):
    """({split: Boxes}, class names, COCO category ids in class order, {image path: its COCO
    image id}) of a COCO folder:
    annotations/instances_<split>*.json (train, val, test) and, for each, its images in the
    folder named as the file's suffix (instances_val2017.json: val2017/), else images/."""
    folder = os.path.join(data_dir, 'annotations')
    files = [name for name in sources.listdir(folder) if name.startswith('instances_')
             and name.endswith('.json')] if os.path.isdir(folder) else []
    if not files:
        raise DataError('--data_dir %s: no annotations/instances_*.json (a COCO folder)' % data_dir)
    splits, categories, image_ids = {}, None, {}
    for name in files:
        suffix = name[len('instances_'):-len('.json')]
        split = next((s for s, words in (('train', ('train',)), ('val', ('val', 'validation')),
                                         ('test', ('test',)))
                      if any(suffix.startswith(w) for w in words)), None)
        if split is None:
            continue
        if split in splits:
            raise DataError('%s: two instances files for its %s split (%s); keep one'
                            % (folder, split, ', '.join(sorted(
                                n for n in files if n[len('instances_'):].startswith(
                                    suffix.rstrip('0123456789'))))))
        images_dir = next((d for d in (os.path.join(data_dir, suffix),
                                       os.path.join(data_dir, 'images', suffix),
                                       os.path.join(data_dir, 'images'))
                           if os.path.isdir(d)), os.path.join(data_dir, suffix))
        splits[split], cats, ids = _read_coco_file(os.path.join(folder, name), images_dir,
                                                   problems)
        image_ids.update(ids)
        if categories is None:
            categories = cats
        elif cats != categories:
            raise DataError('%s: its categories differ from the other split\'s' % name)
    if categories is None:
        raise DataError('--data_dir %s: no instances_train*.json, instances_val*.json or '
                        'instances_test*.json in annotations/' % data_dir)
    ids = sorted(categories)
    return splits, [categories[i] for i in ids], ids, image_ids


def _read_coco_file(path, images_dir, problems):
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
        images, annotations = content['images'], content.get('annotations', [])
        categories = {int(c['id']): str(c['name']) for c in content['categories']}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError('%s: not a COCO instances file (%s)' % (path, e)) from e
    index = {cid: i for i, cid in enumerate(sorted(categories))}
    by_image = collections.defaultdict(list)
    for annotation in annotations:
        by_image[annotation.get('image_id')].append(annotation)
    # An annotation of an image id the file does not list (or lists as another type: '7' is
    # not 7) would be lost without a word.
    listed = {image.get('id') for image in images}
    for image_id in by_image:
        if image_id not in listed:
            for annotation in by_image[image_id]:
                problems.add('boxes of an image id not in its images', str(image_id))
    builder, image_ids = _Builder(), {}
    for image in images:
        name = str(image.get('file_name', ''))
        image_path = os.path.join(images_dir, name)
        if not name or not os.path.isfile(image_path):
            problems.add('images listed but missing', name or str(image.get('id')))
            continue
        size = (int(image.get('height') or 0), int(image.get('width') or 0))
        if not all(size):
            try:
                size = image_size(image_path)
            except OSError:
                problems.add('images that cannot be read', name)
                continue
        boxes, classes, ignored = [], [], []
        for annotation in by_image.get(image.get('id'), []):
            if annotation.get('category_id') not in index:
                problems.add('boxes of an unknown class', name)
                continue
            try:
                x, y, w, h = (float(v) for v in annotation['bbox'])
            except (KeyError, TypeError, ValueError):
                problems.add('boxes without four numbers', name)
                continue
            box = check_box([x, y, x + w, y + h], size, name, problems)
            if box is None:
                continue
            crowd = bool(annotation.get('iscrowd', 0))
            if crowd:
                problems.add("'iscrowd' regions (left out of training, ignored in scoring)", name)
            boxes.append(box)
            classes.append(index[annotation['category_id']])
            ignored.append(crowd)
        builder.add(image_path, size, boxes, classes, ignored)
        image_ids[image_path] = image.get('id')
    return builder.split(), categories, image_ids


# ---- YOLO txt ----

def read_yolo(data_dir, problems):
    """({split: Boxes}, class names) of a YOLO folder: images/ and labels/ (each with train/,
    val/, test/ subfolders, or flat: all 'train'), a label file per image (same stem, .txt:
    `class cx cy w h` normalised to the image; none or empty: no object), and the class names
    one a line in one of YOLO_NAMES."""
    names_path = next((os.path.join(data_dir, n) for n in YOLO_NAMES
                       if os.path.isfile(os.path.join(data_dir, n))), None)
    if names_path is None:
        raise DataError('--data_dir %s: no class names file (%s: one name a line)'
                        % (data_dir, ', '.join(YOLO_NAMES)))
    with open(names_path, encoding='utf-8-sig') as f:  # -sig: a BOM is no part of a name
        lines = [line.strip() for line in f]
    while lines and not lines[-1]:
        lines.pop()
    if '' in lines:
        # Class k is the name on line k+1: dropping a blank line would shift every class after
        # it, and its boxes would train (and score) as the wrong class.
        raise DataError('%s: line %d is blank; the class of index k is the name on line k+1 '
                        '(remove the line, or name the class)' % (names_path,
                                                                  lines.index('') + 1))
    names = lines
    images_root = os.path.join(data_dir, 'images')
    if not os.path.isdir(images_root):
        raise DataError('--data_dir %s: no images/ folder (a YOLO folder has images/ and labels/)'
                        % data_dir)
    subfolders = {split: next((w for w in sources.SPLIT_NAMES[split]
                               if os.path.isdir(os.path.join(images_root, w))), None)
                  for split in ('train', 'val', 'test')}
    if not any(subfolders.values()):
        subfolders = dict(train='')
    if not os.path.isdir(os.path.join(data_dir, 'labels')):
        raise DataError('--data_dir %s: no labels/ folder (a YOLO folder has images/ and labels/, '
                        'a .txt of `class cx cy w h` lines for each image)' % data_dir)
    # Folders in images/ that are no split are not read: say so, not lose their images.
    for name in sources.listdir(images_root):
        if os.path.isdir(os.path.join(images_root, name)) and name not in subfolders.values():
            problems.add('folders in images/ that are not a split (train, val, test)', name)
    splits = {}
    for split, sub in subfolders.items():
        if sub is None:
            continue
        builder = _Builder()
        image_dir = os.path.join(images_root, sub)
        label_dir = os.path.join(data_dir, 'labels', sub)
        for name in sources.listdir(image_dir):
            if sub and os.path.isdir(os.path.join(image_dir, name)):
                problems.add('folders in a split folder of images/', os.path.join(sub, name))
                continue
            if not name.lower().endswith(sources.IMAGE_EXTENSIONS):
                continue
            path = os.path.join(image_dir, name)
            try:
                size = image_size(path)
            except OSError:
                problems.add('images that cannot be read', name)
                continue
            boxes, classes = _read_yolo_labels(
                os.path.join(label_dir, os.path.splitext(name)[0] + '.txt'), size, len(names),
                name, problems)
            builder.add(path, size, boxes, classes, [False] * len(classes))
        splits[split] = builder.split()
    return splits, names


def _read_yolo_labels(path, size, num_classes, name, problems):
    if not os.path.isfile(path):
        return [], []
    height, width = size
    boxes, classes = [], []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            try:
                # Exactly five: a longer line is a polygon (YOLO segmentation labels), whose
                # first four numbers are no box.
                if len(fields) != 5:
                    raise ValueError
                label = int(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:5])
            except ValueError:
                problems.add('label lines that are not `class cx cy w h`', name)
                continue
            if not 0 <= label < num_classes:
                problems.add('boxes of an unknown class', name)
                continue
            box = check_box([(cx - w / 2) * width, (cy - h / 2) * height,
                             (cx + w / 2) * width, (cy + h / 2) * height], size, name, problems)
            if box is not None:
                boxes.append(box)
                classes.append(label)
    return boxes, classes
