"""Detection data and tools as users damage them: each fault is a one-line error naming the file
or flag, or is counted and named, never silently wrong boxes or figures."""
import json
import os
import shutil
import struct
import types
import zlib

import numpy as np
import pytest
from PIL import Image

import config
from datasets import detections
from pipelines import detection as pipeline
from preflight.errors import DataError, UsageError
from tests import detection_data


def test_coco_boxes_of_unlisted_image_ids_and_unreadable_unsized_images_are_counted(tmp_path):
    detection_data.write_coco(str(tmp_path), count=6)
    path = tmp_path / 'annotations' / 'instances_train.json'
    content = json.loads(path.read_text())
    content['annotations'].append(dict(id=99, image_id=12345, category_id=3, bbox=[1, 1, 9, 9]))
    content['annotations'][0]['image_id'] = str(content['annotations'][0]['image_id'])
    for image in content['images']:
        del image['width'], image['height']  # read from the files
    path.write_text(json.dumps(content))
    (tmp_path / 'train' / 'p1.png').write_bytes(b'not a png')
    loaded = detections.load('coco', str(tmp_path))
    found = loaded['problems'].as_dict()
    assert found['boxes of an image id not in its images'] == 2  # 12345, and '100' (not 100)
    assert found['images that cannot be read'] == 1
    assert loaded['train'].num_images == 3
    assert loaded['image_ids'][str(tmp_path / 'val' / 'p5.png')] == 105


def test_yolo_polygon_lines_are_not_taken_for_boxes(tmp_path):
    detection_data.write_yolo(str(tmp_path), count=4)
    # A segmentation polygon well inside the photo: its first four numbers look like a box.
    (tmp_path / 'labels' / 'p0.txt').write_text('0 0.3 0.3 0.4 0.3 0.4 0.5 0.3 0.5\n')
    loaded = detections.load('yolo', str(tmp_path))
    assert loaded['problems'].as_dict() == {'label lines that are not `class cx cy w h`': 1}
    assert len(loaded['train'].boxes[0]) == 0


def test_yolo_names_with_a_blank_line_inside_are_refused_at_the_end_allowed(tmp_path):
    detection_data.write_yolo(str(tmp_path), count=4)
    (tmp_path / 'classes.txt').write_text('\ufeffbar\nsquare\n\n  \n')
    assert detections.load('yolo', str(tmp_path))['label_names'] == ['bar', 'square']
    (tmp_path / 'classes.txt').write_text('bar\n\nsquare\n')
    with pytest.raises(DataError, match=r'classes.txt: line 2 is blank'):
        detections.load('yolo', str(tmp_path))


def test_yolo_without_labels_is_refused_and_unread_folders_are_named(tmp_path):
    detection_data.write_yolo(str(tmp_path), count=4)
    os.makedirs(str(tmp_path / 'images' / 'more'))
    Image.new('RGB', (8, 8)).save(str(tmp_path / 'images' / 'more' / 'x.png'))
    loaded = detections.load('yolo', str(tmp_path))
    assert loaded['problems'].as_dict() == {
        'folders in images/ that are not a split (train, val, test)': 1}
    os.rename(str(tmp_path / 'labels'), str(tmp_path / 'lbls'))
    with pytest.raises(DataError, match='no labels/ folder'):
        detections.load('yolo', str(tmp_path))


def test_voc_difficult_written_as_a_word(tmp_path):
    detection_data.write_voc(str(tmp_path), count=4, splits=(('train', 1.0),))
    path = tmp_path / 'Annotations' / 'photo_00.xml'
    path.write_text(path.read_text().replace('<difficult>0</difficult>',
                                             '<difficult>True</difficult>'))
    loaded = detections.load('voc', str(tmp_path))
    assert loaded['train'].ignored[0].all()


def test_a_train_split_of_no_box_to_learn_is_one_line(tmp_path):
    from tasks import detector
    detection_data.write_voc(str(tmp_path), count=8)
    for name in os.listdir(str(tmp_path / 'Annotations')):
        path = tmp_path / 'Annotations' / name
        path.write_text(path.read_text().replace('<difficult>0</difficult>',
                                                 '<difficult>1</difficult>'))
    cfg = dict(config.DEFAULTS, task='detect', dataset='voc', data_dir=str(tmp_path),
               image_size=64, batch_size=2)
    with pytest.raises(DataError, match="none of its 6 training images has a box to train on "
                                        r"\(its \d+ boxes are all 'difficult'"):
        detector.load_data(cfg)


def test_past_max_boxes_the_largest_are_kept():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 60, 60], [5, 30, 25, 50]], np.float32)
    split = detections.detection_layouts.Boxes(
        ['x.png'], [(64, 64)], [boxes], [np.array([0, 1, 2])], [np.zeros(3, bool)])
    pixels = np.zeros((64, 64, 3), np.uint8)
    original = pipeline._load
    pipeline._load = lambda *args: pixels
    try:
        _, labels, ok = pipeline.training_example(split, 2, 0, np.array([0, 0]), 64)
    finally:
        pipeline._load = original
    assert ok and sorted(labels[:, 4].tolist()) == [1, 2]  # the 10x10 one dropped


def test_to_photo_inverts_the_letterbox_resize_exactly():
    # 64 x 96 at 64: scaled 2/3, 42.67 rows rounded to 43, so rows stretch by 43/64, not 2/3.
    _, new_h, new_w, top, left = pipeline.letterbox_geometry(64, 96, 64)
    photo = np.array([[12.0, 60.0, 90.0, 64.0]])
    inside = photo * ([new_w / 96, new_h / 64] * 2) + [left, top, left, top]
    np.testing.assert_allclose(pipeline.to_photo(inside, 64, 96, 64), photo, atol=1e-9)


def _run(stem='imagenet'):
    return dict(task='detect', stem=stem, anchor_boxes=[[10, 13]] * 9,
                label_names=['bar', 'square'])


def test_a_detector_checkpoint_at_a_size_its_stride_does_not_divide_is_one_line():
    from deployment import detectors
    with pytest.raises(UsageError, match=r'--image_size 100: the detector takes multiples of '
                                         r'32 \(its deepest stride\), e.g. 96'):
        detectors.resolve_config('ckpt', _run(), dict(image_size=100))
    # The cifar stem's deepest map is at 16: 80 is a size it takes.
    assert detectors.resolve_config('ckpt', _run(stem='cifar'), dict(image_size=80))


def test_a_frozen_detector_refuses_settings_its_graph_does_not_have():
    from deployment import detectors
    frozen = types.SimpleNamespace(input_size=96, frozen_with=dict(
        score_threshold=0.005, iou_threshold=0.45, max_detections=100))
    detectors.check_frozen_settings(frozen, 'y.pb', dict(image_size=96, score_threshold=0.005,
                                                         iou_threshold=None))
    for flag, value in (('image_size', 128), ('score_threshold', 0.5), ('max_detections', 5)):
        with pytest.raises(UsageError, match='--%s %s: y.pb was frozen with' % (flag, value)):
            detectors.check_frozen_settings(frozen, 'y.pb', {flag: value})


@pytest.mark.parametrize('flags, message', [
    (['--score_threshold', '1.5'], '--score_threshold must be in [0, 1]'),
    (['--iou_threshold', '-0.1'], '--iou_threshold must be in [0, 1]'),
    (['--max_detections', '0'], '--max_detections must be at least 1'),
])
def test_evaluate_refuses_thresholds_out_of_range(capsys, flags, message):
    import evaluate
    with pytest.raises(SystemExit) as exit_:
        evaluate.parse_args(['model'] + flags)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


class _FakeDetector:
    """One box, on the letterboxed input's centre quarter, for every photo."""
    input_size = 64
    labels = ['bar', 'square']

    def __init__(self, run):
        self.run = run

    def detect(self, image):
        return (np.array([[16, 16, 48, 48]], np.float32), np.array([0.9], np.float32),
                np.array([1], np.int32), np.int32(1))


def test_evaluate_writes_coco_detections_with_the_folders_own_image_ids(tmp_path, capsys):
    import evaluate
    detection_data.write_coco(str(tmp_path / 'coco'), count=6)
    model = _FakeDetector(dict(dataset='coco', data_dir=str(tmp_path / 'coco')))
    out = str(tmp_path / 'found.json')
    evaluate.evaluate_detector(evaluate.parse_args(['m.pb', '--detections', out]), model)
    written = json.loads(open(out).read())
    assert sorted({d['image_id'] for d in written}) == [104, 105]  # instances_val.json's
    assert {d['category_id'] for d in written} == {7} and {d['file_name'] for d in written} == {
        'p4.png', 'p5.png'}


def test_predict_will_not_draw_over_the_photo_itself(tmp_path):
    import predict
    photo = str(tmp_path / 'p.png')
    Image.new('RGB', (32, 24)).save(photo)
    before = open(photo, 'rb').read()
    args = predict.parse_args(['m.pb', photo, '--output_dir', str(tmp_path)])
    with pytest.raises(UsageError, match='would write the drawn photo over'):
        predict.detect(args, _FakeDetector({}))
    assert open(photo, 'rb').read() == before


def _yolo_splits(root, folder, names_yaml='names: [bar, square]\n'):
    """write_yolo's 6 photos in splits, as Ultralytics or Roboflow lay them out: 4 'train' and 2
    'val' images and labels, each kind in folder(split, kind); and a data.yaml."""
    truth = detection_data.write_yolo(str(root / 'flat'), count=6)
    for i, name in enumerate(sorted(truth)):
        split = 'train' if i < 4 else 'val'
        for kind, file in (('images', name), ('labels', name[:-4] + '.txt')):
            os.makedirs(str(root / folder(split, kind)), exist_ok=True)
            os.rename(str(root / 'flat' / kind / file), str(root / folder(split, kind) / file))
    shutil.rmtree(str(root / 'flat'))
    (root / 'data.yaml').write_bytes(names_yaml.encode('utf-8'))
    return truth


def _ultralytics(split, kind):
    return os.path.join(kind, split)


def _roboflow(split, kind):
    return os.path.join('valid' if split == 'val' else split, kind)


def test_yolo_a_split_of_no_label_file_is_one_line(tmp_path):
    # Ultralytics' images/ in split folders, its labels/ not: no image would have a box.
    _yolo_splits(tmp_path / 'a', _ultralytics)
    for split in ('train', 'val'):
        for name in os.listdir(str(tmp_path / 'a' / 'labels' / split)):
            os.rename(str(tmp_path / 'a' / 'labels' / split / name),
                      str(tmp_path / 'a' / 'labels' / name))
    with pytest.raises(DataError, match=r'labels/train: no label file for any of the 4 images '
                                        r'in .*images/train'):
        detections.load('yolo', str(tmp_path / 'a'))
    _yolo_splits(tmp_path / 'b', _roboflow)
    for name in os.listdir(str(tmp_path / 'b' / 'valid' / 'labels')):
        os.remove(str(tmp_path / 'b' / 'valid' / 'labels' / name))
    with pytest.raises(DataError, match=r'valid/labels: no label file for any of the 2 images'):
        detections.load('yolo', str(tmp_path / 'b'))


def test_yolo_label_files_of_no_image_read_are_named(tmp_path):
    _yolo_splits(tmp_path, _roboflow)
    os.remove(str(tmp_path / 'train' / 'images' / 'p0.png'))
    Image.open(str(tmp_path / 'train' / 'images' / 'p1.png')).save(
        str(tmp_path / 'train' / 'images' / 'p1.webp'))
    os.remove(str(tmp_path / 'train' / 'images' / 'p1.png'))
    (tmp_path / 'train' / 'labels' / 'classes.txt').write_text('bar\nsquare\n')  # labelImg's
    loaded = detections.load('yolo', str(tmp_path))
    assert loaded['problems'].lines() == [
        'Skipped 2 label files with no image of their name (.jpg, .jpeg, .png, .bmp, .gif): '
        'train/labels/p0.txt, train/labels/p1.txt']


def test_yolo_images_outside_the_split_folders_read_are_named_or_refused(tmp_path):
    _yolo_splits(tmp_path, _ultralytics)
    Image.new('RGB', (8, 8)).save(str(tmp_path / 'images' / 'stray.JPG'))
    loaded = detections.load('yolo', str(tmp_path))
    assert loaded['problems'].as_dict() == {
        'images in images/ itself, beside its split folders': 1}
    os.makedirs(str(tmp_path / 'valid' / 'images'))
    os.makedirs(str(tmp_path / 'valid' / 'labels'))
    with pytest.raises(DataError, match=r'holds both images/ and valid/images/: two arrangements '
                                        r'of a YOLO folder'):
        detections.load('yolo', str(tmp_path))


def test_yolo_data_yaml_names_are_the_text_written(tmp_path):
    # Plain YAML would read no, on and 01 as false, true and 1: classes renamed.
    _yolo_splits(tmp_path, _ultralytics, '\ufeffpath: .\r\ntrain: images/train\r\n'
                                          "nc: '4'\r\nnames:\r\n  '0': no\r\n  1: on\r\n"
                                          '  2: 01\r\n  3: 1.10\r\n')
    assert detections.load('yolo', str(tmp_path))['label_names'] == ['no', 'on', '01', '1.10']


@pytest.mark.parametrize('file', ['classes.txt', 'data.yaml'])
def test_yolo_names_not_in_utf8_are_one_line(tmp_path, file):
    _yolo_splits(tmp_path, _roboflow)
    (tmp_path / file).write_bytes('names: [bar, carré]\n'.encode('latin-1'))
    with pytest.raises(DataError, match=r'%s is not UTF-8 text \(byte 17: invalid continuation '
                                        r'byte\); save it as UTF-8' % file):
        detections.load('yolo', str(tmp_path))


def test_yolo_label_files_saved_with_a_bom_are_read(tmp_path):
    truth = detection_data.write_yolo(str(tmp_path), count=4)
    path = tmp_path / 'labels' / 'p0.txt'
    path.write_text('\ufeff' + path.read_text(), encoding='utf-8')
    loaded = detections.load('yolo', str(tmp_path))
    assert not loaded['problems'].count()
    assert loaded['train'].classes[0].tolist() == truth['p0.png'][1]


def _png_header(width, height):
    """A PNG that says it is width x height, without the pixels."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack(
        '>IIBBBBB', width, height, 8, 2, 0, 0, 0)) + chunk(b'IEND', b'')


def test_an_image_too_large_for_pillow_is_skipped_and_named(tmp_path):
    detection_data.write_yolo(str(tmp_path), count=4)
    (tmp_path / 'images' / 'p0.png').write_bytes(_png_header(20000, 20000))
    loaded = detections.load('yolo', str(tmp_path))
    assert loaded['problems'].lines() == ['Skipped 1 images that cannot be read: p0.png']


def _roboflow_coco(root):
    """write_coco's folder as Roboflow exports it: train/ and valid/ each with its
    _annotations.coco.json, whose category 0 is the project, the supercategory of the others."""
    truth = detection_data.write_coco(str(root), count=8)
    os.rename(str(root / 'val'), str(root / 'valid'))
    for split, folder in (('train', 'train'), ('val', 'valid')):
        path = root / 'annotations' / ('instances_%s.json' % split)
        content = json.loads(path.read_text())
        content['categories'] = [dict(id=0, name='shapes', supercategory='none')] + [
            dict(c, supercategory='shapes') for c in content['categories']]
        (root / folder / '_annotations.coco.json').write_text(json.dumps(content))
        os.remove(str(path))
    os.rmdir(str(root / 'annotations'))
    return truth


def test_coco_roboflow_project_category_is_no_class(tmp_path):
    _roboflow_coco(tmp_path)
    loaded = detections.load('coco', str(tmp_path))
    assert loaded['label_names'] == ['bar', 'square'] and loaded['category_ids'] == [3, 7]
    assert {c for classes in loaded['train'].classes for c in classes.tolist()} == {0, 1}
    # Both arrangements in one folder: which to read is not clear.
    detection_data.write_coco(str(tmp_path / 'other'), count=4)
    os.rename(str(tmp_path / 'other' / 'annotations'), str(tmp_path / 'annotations'))
    with pytest.raises(DataError, match=r'holds both annotations/instances_\*.json and '
                                        r'train/_annotations.coco.json, valid/'):
        detections.load('coco', str(tmp_path))


def test_coco_instances_files_of_no_split_or_the_same_one_are_named(tmp_path):
    detection_data.write_coco(str(tmp_path), count=6)
    annotations = tmp_path / 'annotations'
    shutil.copy(str(annotations / 'instances_val.json'),
                str(annotations / 'instances_minival.json'))  # COCO 2014's: read as no split
    assert detections.load('coco', str(tmp_path))['problems'].as_dict() == {
        'instances files of no split (train, val, test)': 1}
    shutil.copy(str(annotations / 'instances_val.json'), str(annotations / 'instances_valid.json'))
    with pytest.raises(DataError, match=r'two instances files for its val split '
                                        r'\(instances_val.json, instances_valid.json\)'):
        detections.load('coco', str(tmp_path))


@pytest.mark.parametrize('damage, says', [
    (lambda c: c['annotations'].append([1, 2]), 'images and annotations must be lists of objects'),
    (lambda c: c.update(images={'p0.png': 100}), 'images and annotations must be lists of objects'),
    (lambda c: c.update(annotations=None), None),
    (lambda c: c['images'][0].update(height='tall'), None),  # read from the file
], ids=['an annotation not an object', 'images an object', 'annotations null', 'height a word'])
def test_coco_files_of_odd_shapes_are_one_line(tmp_path, damage, says):
    detection_data.write_coco(str(tmp_path), count=6)
    path = tmp_path / 'annotations' / 'instances_train.json'
    content = json.loads(path.read_text())
    damage(content)
    path.write_text(json.dumps(content))
    if says:
        with pytest.raises(DataError, match='instances_train.json: not a COCO instances file '
                                            r'\(%s\)' % says):
            detections.load('coco', str(tmp_path))
    else:
        assert detections.load('coco', str(tmp_path))['train'].sizes[0] == (64, 96)


def test_voc_objects_without_a_name_and_odd_image_lists(tmp_path):
    detection_data.write_voc(str(tmp_path), count=8)
    path = tmp_path / 'Annotations' / 'photo_00.xml'
    path.write_text(path.read_text().replace('<name>', '<label>').replace('</name>', '</label>'))
    image_list = tmp_path / 'ImageSets' / 'Main' / 'train.txt'
    image_list.write_text('\ufeff' + image_list.read_text().replace('\n', '\r\n'),
                          encoding='utf-8')
    loaded = detections.load('voc', str(tmp_path))
    assert loaded['label_names'] == ['bar', 'square']  # no class ''
    assert loaded['problems'].lines() == ['Skipped 1 boxes without a class name: photo_00.xml']
    image_list.write_bytes(b'photo_00\nphoto_\xe9\n')
    with pytest.raises(DataError, match=r'train.txt is not UTF-8 text \(byte 15'):
        detections.load('voc', str(tmp_path))


def test_no_class_with_a_box_says_what_was_skipped(tmp_path):
    detection_data.write_voc(str(tmp_path), count=4, splits=(('train', 1.0),))
    for name in os.listdir(str(tmp_path / 'JPEGImages')):
        os.rename(str(tmp_path / 'JPEGImages' / name),
                  str(tmp_path / 'JPEGImages' / (name[:-4] + '.tif')))
    with pytest.raises(DataError, match=r'no class has a box \(Skipped 4 annotations whose image '
                                        r'is missing: photo_00.xml'):
        detections.load('voc', str(tmp_path))
