"""COCO JSON folders (annotations/instances_<split>*.json beside the image folders, or
Roboflow's <split>/_annotations.coco.json) read into detection_layouts.Boxes splits."""
import collections
import json
import os

from datasets import detection_layouts as layouts
from datasets import sources
from preflight.errors import DataError

# The instances file of each split folder of Roboflow's COCO export.
ROBOFLOW_COCO = '_annotations.coco.json'


def read_coco(data_dir, problems):
    """({split: Boxes}, class names, COCO category ids in class order, {image path: its COCO
    image id}) of a COCO folder (_coco_files)."""
    files, categories, parents, used = [], None, set(), set()
    for split, path, images_dir in _coco_files(data_dir, problems):
        images, annotations, cats, supers = _load_coco_file(path)
        if categories is None:
            categories = cats
        elif cats != categories:
            raise DataError("%s: its categories differ from the other split's" % path)
        parents |= supers
        used |= {annotation.get('category_id') for annotation in annotations}
        files.append((split, images, annotations, images_dir))
    # Roboflow's export lists its project as category 0, the supercategory of every other one,
    # and no box is of it: no class to learn, nor one the detector is scored on.
    categories = {i: name for i, name in categories.items() if i in used or name not in parents}
    ids = sorted(categories)
    splits, image_ids = {}, {}
    for split, images, annotations, images_dir in files:
        splits[split], found = _read_coco_images(images, annotations, images_dir, ids, problems)
        image_ids.update(found)
    return splits, [categories[i] for i in ids], ids, image_ids


def _coco_files(data_dir, problems):
    """[(split, instances file, its images folder)]: annotations/instances_<split>*.json (train,
    val, test) with its images in the folder named as the file's suffix (instances_val2017.json:
    val2017/), else images/; or Roboflow's export, <split>/_annotations.coco.json beside its
    images (train/, valid/, test/). Instances files of no split are named in `problems`."""
    folder = os.path.join(data_dir, 'annotations')
    files = [name for name in sources.listdir(folder) if name.startswith('instances_')
             and name.endswith('.json')] if os.path.isdir(folder) else []
    exported = [(split, os.path.join(data_dir, name)) for split, name in (
        (split, layouts.first_folder(data_dir, names, inside=ROBOFLOW_COCO))
        for split, names in layouts.SPLIT_FOLDERS.items()) if name]
    if files and exported:
        raise DataError('--data_dir %s holds both annotations/instances_*.json and %s: two '
                        'arrangements of a COCO folder, of which only one would be read; move '
                        'the other out' % (data_dir, ', '.join(
                            os.path.join(os.path.basename(images), ROBOFLOW_COCO)
                            for _, images in exported)))
    if not files:
        if not exported:
            raise DataError('--data_dir %s: no annotations/instances_*.json, nor train/%s (a '
                            'COCO folder)' % (data_dir, ROBOFLOW_COCO))
        return [(split, os.path.join(images, ROBOFLOW_COCO), images) for split, images in exported]
    found = {}
    for name in files:
        suffix = name[len('instances_'):-len('.json')]
        split = next((s for s, words in layouts.SPLIT_FOLDERS.items()
                      if any(suffix.startswith(w) for w in words)), None)
        if split is None:
            problems.add('instances files of no split (train, val, test)', name)
            continue
        if split in found:
            raise DataError('%s: two instances files for its %s split (%s, %s); keep one' % (
                folder, split, os.path.basename(found[split][0]), name))
        found[split] = (os.path.join(folder, name), next(
            (d for d in (os.path.join(data_dir, suffix), os.path.join(data_dir, 'images', suffix),
                         os.path.join(data_dir, 'images')) if os.path.isdir(d)),
            os.path.join(data_dir, suffix)))
    if not found:
        raise DataError('--data_dir %s: no instances_train*.json, instances_val*.json or '
                        'instances_test*.json in annotations/' % data_dir)
    return [(split, path, images) for split, (path, images) in found.items()]


def _load_coco_file(path):
    """(images, annotations, {category id: name}, the supercategories of categories named
    otherwise) of an instances file."""
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
        images, annotations = content['images'], content.get('annotations') or []
        if not isinstance(images, list) or not isinstance(annotations, list) or not all(
                isinstance(item, dict) for item in images + annotations):
            raise TypeError('images and annotations must be lists of objects')
        categories = {int(c['id']): str(c['name']) for c in content['categories']}
        parents = {str(c['supercategory']) for c in content['categories']
                   if c.get('supercategory') not in (None, c['name'])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError('%s: not a COCO instances file (%s)' % (path, e)) from e
    return images, annotations, categories, parents


def _read_coco_images(images, annotations, images_dir, ids, problems):
    """(Boxes, {image path: its COCO image id}) of an instances file's images, classes indexing
    category `ids`."""
    index = {cid: i for i, cid in enumerate(ids)}
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
    builder, image_ids = layouts.Builder(), {}
    for image in images:
        name = str(image.get('file_name', ''))
        image_path = os.path.join(images_dir, name)
        if not name or not os.path.isfile(image_path):
            problems.add('images listed but missing', name or str(image.get('id')))
            continue
        try:
            size = (int(image.get('height') or 0), int(image.get('width') or 0))
        except (TypeError, ValueError):
            size = (0, 0)  # read from the file, as when not given
        if not all(size):
            try:
                size = layouts.image_size(image_path)
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
            box = layouts.check_box([x, y, x + w, y + h], size, name, problems)
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
    return builder.split(), image_ids
