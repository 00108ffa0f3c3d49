"""YOLO txt folders (images/, labels/ of `class cx cy w h` normalised, or Roboflow's
<split>/images, <split>/labels; a names file or Ultralytics' data.yaml) read into
detection_layouts.Boxes splits."""
import os

from datasets import detection_layouts as layouts
from datasets import sources
from preflight.errors import DataError

# The names file of a YOLO folder, first found first: a name a line, or Ultralytics' YAML.
YOLO_NAMES = ('classes.txt', 'obj.names', 'classes.names', 'names.txt', 'data.yaml',
              'dataset.yaml')


def read_yolo(data_dir, problems):
    """({split: Boxes}, class names) of a YOLO folder: images/ and labels/ (each with train/,
    val/, test/ subfolders, or flat: all 'train'), or Roboflow's export (train/, valid/, test/,
    each with images/ and labels/); a label file per image (same stem, .txt: `class cx cy w h`
    normalised to the image; none or empty: no object, but a split with none at all is refused);
    the class names in one of YOLO_NAMES."""
    names = _yolo_names(data_dir)
    splits = {}
    for split, image_dir, label_dir in _yolo_folders(data_dir, problems):
        builder, stems = layouts.Builder(), set()
        for name in sources.listdir(image_dir):
            if not name.lower().endswith(sources.IMAGE_EXTENSIONS) or os.path.isdir(
                    os.path.join(image_dir, name)):  # folders: named by _yolo_folders
                continue
            stem = os.path.splitext(name)[0]
            stems.add(stem)
            path = os.path.join(image_dir, name)
            try:
                size = layouts.image_size(path)
            except OSError:
                problems.add('images that cannot be read', name)
                continue
            boxes, classes = _read_yolo_labels(
                os.path.join(label_dir, stem + '.txt'), size, len(names), name, problems)
            builder.add(path, size, boxes, classes, [False] * len(classes))
        found = sources.listdir(label_dir) if os.path.isdir(label_dir) else []
        labels = {n[:-len('.txt')] for n in found if n.endswith('.txt') and n not in YOLO_NAMES}
        if stems and not stems & labels:
            # A labels folder missing, empty, or not split as images/ is: every image of the split
            # would be read as one of no object.
            raise DataError('%s: no label file for any of the %d images in %s (a .txt of the '
                            "image's name, of `class cx cy w h` lines)"
                            % (label_dir, len(stems), image_dir))
        # Boxes of an image not read (none of that name, or a .webp) would be lost without a word.
        for stem in sorted(labels - stems):
            problems.add('label files with no image of their name (%s)' % ', '.join(
                sources.IMAGE_EXTENSIONS), os.path.relpath(
                    os.path.join(label_dir, stem + '.txt'), data_dir))
        splits[split] = builder.split()
    return splits, names


def _yolo_folders(data_dir, problems):
    """[(split, image folder, label folder)] of a YOLO folder, in one of its two arrangements
    (DataError when it has both); what is in them but not read named in `problems`."""
    images_root = os.path.join(data_dir, 'images')
    exported = {split: os.path.join(data_dir, name) for split, name in (
        (split, layouts.first_folder(data_dir, names, inside='images'))
        for split, names in layouts.SPLIT_FOLDERS.items()) if name}
    if exported and os.path.isdir(images_root):
        raise DataError('--data_dir %s holds both images/ and %s: two arrangements of a YOLO '
                        'folder, of which only one would be read; move the other out' % (
                            data_dir, ', '.join(os.path.basename(folder) + '/images/'
                                                for folder in exported.values())))
    if exported:  # Roboflow's train/images, valid/images...
        for folder in exported.values():
            if not os.path.isdir(os.path.join(folder, 'labels')):
                raise DataError('%s has images/ but no labels/ (a .txt of `class cx cy w h` lines '
                                'for each image)' % folder)
        folders = [(split, os.path.join(folder, 'images'), os.path.join(folder, 'labels'))
                   for split, folder in exported.items()]
    else:
        if not os.path.isdir(images_root):
            raise DataError('--data_dir %s: no images/ folder (a YOLO folder has images/ and '
                            'labels/, or train/, valid/, test/ each with images/ and labels/)'
                            % data_dir)
        if not os.path.isdir(os.path.join(data_dir, 'labels')):
            raise DataError('--data_dir %s: no labels/ folder (a YOLO folder has images/ and '
                            'labels/, a .txt of `class cx cy w h` lines for each image)' % data_dir)
        subfolders = {split: layouts.first_folder(images_root, names)
                      for split, names in layouts.SPLIT_FOLDERS.items()}
        for name in sources.listdir(images_root):
            if os.path.isdir(os.path.join(images_root, name)):
                if name not in subfolders.values():
                    problems.add('folders in images/ that are not a split (train, val, test)',
                                 name)
            elif any(subfolders.values()) and name.lower().endswith(sources.IMAGE_EXTENSIONS):
                problems.add('images in images/ itself, beside its split folders', name)
        if not any(subfolders.values()):
            return [('train', images_root, os.path.join(data_dir, 'labels'))]
        folders = [(split, os.path.join(images_root, sub), os.path.join(data_dir, 'labels', sub))
                   for split, sub in subfolders.items() if sub]
    for _, image_dir, _ in folders:
        for name in sources.listdir(image_dir):
            if os.path.isdir(os.path.join(image_dir, name)):
                problems.add('folders in a split folder of images',
                             os.path.relpath(os.path.join(image_dir, name), data_dir))
    return folders


def _yolo_names(data_dir):
    """The class names of a YOLO folder: a name a line, or the `names:` of Ultralytics' YAML."""
    path = next((os.path.join(data_dir, n) for n in YOLO_NAMES
                 if os.path.isfile(os.path.join(data_dir, n))), None)
    if path is None:
        raise DataError('--data_dir %s: no class names file (%s)' % (data_dir, ', '.join(
            YOLO_NAMES)))
    if path.endswith('.yaml'):
        return _yaml_names(path)
    lines = [line.strip() for line in _read_text(path).split('\n')]
    while lines and not lines[-1]:
        lines.pop()
    if '' in lines:
        # Class k is the name on line k+1: dropping a blank line would shift every class after
        # it, and its boxes would train (and score) as the wrong class.
        raise DataError('%s: line %d is blank; the class of index k is the name on line k+1 '
                        '(remove the line, or name the class)' % (path, lines.index('') + 1))
    if not lines:
        raise DataError('%s is empty: it needs the class names, one a line' % path)
    return lines


def _read_text(path):
    try:
        with open(path, encoding='utf-8-sig') as f:  # -sig: a BOM is no part of a name
            return f.read()
    except OSError as e:
        raise DataError('%s cannot be read (%s)' % (path, e.strerror or e)) from None
    except UnicodeDecodeError as e:
        raise DataError('%s is not UTF-8 text (byte %d: %s); save it as UTF-8'
                        % (path, e.start, e.reason)) from None


def _yaml_names(path):
    import yaml

    class TextLoader(yaml.SafeLoader):
        """YAML whose plain scalars are the text written (null aside): a class named no, on, 01
        or 1.10 is not false, true, 1 or 1.1."""

    for tag in ('bool', 'int', 'float', 'timestamp'):
        TextLoader.add_constructor('tag:yaml.org,2002:' + tag, yaml.SafeLoader.construct_yaml_str)
    try:
        spec = yaml.load(_read_text(path), Loader=TextLoader)
    except yaml.YAMLError as e:
        raise DataError('%s cannot be read as YAML (%s)' % (
            path, str(e).splitlines()[0] if str(e) else type(e).__name__)) from None
    names = spec.get('names') if isinstance(spec, dict) else None
    if isinstance(names, dict):  # Ultralytics' {index: name}
        try:
            by_index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            by_index = {}
        if sorted(by_index) != list(range(len(names))):
            raise DataError('%s: names has keys [%s]; they must be the class indices 0 to %d'
                            % (path, ', '.join(sorted(str(k) for k in names)), len(names) - 1))
        names = [by_index[i] for i in range(len(names))]
    if not isinstance(names, list) or not names or any(
            not isinstance(n, str) or not n.strip() for n in names):
        raise DataError("%s: no class names under 'names' (names: [cat, dog], or '0: cat' "
                        "lines under it)" % path)
    if 'nc' in spec and str(spec['nc']) != str(len(names)):
        raise DataError('%s: nc is %s but names lists %d classes' % (path, spec['nc'], len(names)))
    return [n.strip() for n in names]


def _read_yolo_labels(path, size, num_classes, name, problems):
    if not os.path.isfile(path):
        return [], []
    height, width = size
    boxes, classes = [], []
    with open(path, encoding='utf-8-sig', errors='replace') as f:  # -sig: Notepad's BOM
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
            box = layouts.check_box([(cx - w / 2) * width, (cy - h / 2) * height,
                             (cx + w / 2) * width, (cy + h / 2) * height], size, name, problems)
            if box is not None:
                boxes.append(box)
                classes.append(label)
    return boxes, classes
