"""Detection data and tools as users damage them: each fault is a one-line error naming the file
or flag, or is counted and named, never silently wrong boxes or figures."""
import json
import os
import types

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
