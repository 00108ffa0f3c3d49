"""Detection data: the VOC, COCO and YOLO readers (boxes in pixels, splits, bad annotations
skipped, counted and named), the carving of splits, box-safe augmentation and the letterbox."""
import os
import shutil

import numpy as np
import pytest

from datasets import detections
from pipelines import detection as pipeline
from preflight.errors import DataError
from tests import detection_data


def _by_name(split):
    return {os.path.basename(path): (boxes, classes)
            for path, boxes, classes in zip(split.paths, split.boxes, split.classes)}


def test_voc_reads_boxes_in_pixels_and_its_own_splits(tmp_path):
    truth = detection_data.write_voc(str(tmp_path), count=8)
    loaded = detections.load('voc', str(tmp_path))
    assert loaded['label_names'] == ['bar', 'square']
    assert (loaded['train'].num_images, loaded['val'].num_images,
            loaded['test'].num_images) == (6, 0, 2)
    for name, (boxes, classes) in {**_by_name(loaded['train']), **_by_name(loaded['test'])}.items():
        want_boxes, want_classes = truth[name[:-4]]
        np.testing.assert_allclose(boxes, np.array(want_boxes, np.float32).reshape(-1, 4))
        assert classes.tolist() == want_classes
    assert loaded['train'].sizes[0] == (64, 96)
    assert not loaded['problems'].count()


def test_bad_voc_annotations_are_skipped_counted_and_named(tmp_path):
    detection_data.write_voc(str(tmp_path), count=8, extra_objects={
        'photo_00': [('square', 10, 10, 5, 20, 0)],        # negative width
        'photo_01': [('square', 50, 50, 400, 60, 0)],      # far past the edge
        'photo_02': [('zebra', 5, 5, 20, 20, 0)],          # a class no image list names... kept
        'photo_03': [('bar', 5, 5, 30, 15, 1)]})           # difficult
    os.remove(str(tmp_path / 'JPEGImages' / 'photo_04.png'))
    loaded = detections.load('voc', str(tmp_path))
    found = loaded['problems'].as_dict()
    assert found['boxes of zero or negative size'] == 1
    assert found['boxes outside the image'] == 1
    assert found['annotations whose image is missing'] == 1
    assert "'difficult' boxes (left out of training, ignored in scoring)" in found
    lines = '\n'.join(loaded['problems'].lines())
    assert 'photo_00' in lines and 'photo_01' in lines and 'photo_04.xml' in lines
    # Names found in the annotations are the classes: zebra is one (one box).
    assert 'zebra' in loaded['label_names']
    difficult = [ignored for path, ignored in zip(loaded['train'].paths, loaded['train'].ignored)
                 if path.endswith('photo_03.png')][0]
    assert difficult.sum() == 1
    assert loaded['train'].num_images == 5  # photo_04 dropped


def test_voc_without_image_sets_carves_val_and_test_by_seed(tmp_path):
    detection_data.write_voc(str(tmp_path), count=10)
    import shutil
    shutil.rmtree(str(tmp_path / 'ImageSets'))
    first = detections.load('voc', str(tmp_path), val_size=2, test_size=3, seed=1)
    again = detections.load('voc', str(tmp_path), val_size=2, test_size=3, seed=1)
    assert (first['train'].num_images, first['val'].num_images, first['test'].num_images) == \
        (5, 2, 3)
    assert first['test'].paths == again['test'].paths
    assert not set(first['test'].paths) & set(first['train'].paths)
    with pytest.raises(DataError, match='leave no training images'):
        detections.load('voc', str(tmp_path), val_size=5, test_size=5)


def test_voc_refuses_carving_a_split_it_has(tmp_path):
    detection_data.write_voc(str(tmp_path), count=8)
    with pytest.raises(DataError, match='--test_size 2: .* has its own test split'):
        detections.load('voc', str(tmp_path), test_size=2)


def _check_coco(loaded, truth):
    """write_coco's folder, read: its category ids, its splits, its boxes."""
    assert loaded['label_names'] == ['bar', 'square'] and loaded['category_ids'] == [3, 7]
    assert loaded['train'].num_images == 6 and loaded['val'].num_images == 2
    for name, (boxes, classes) in _by_name(loaded['val']).items():
        np.testing.assert_allclose(boxes, np.array(truth[name][0], np.float32).reshape(-1, 4))
        assert classes.tolist() == truth[name][1]


def test_coco_json_keeps_category_ids_and_reads_each_split(tmp_path):
    truth = detection_data.write_coco(str(tmp_path), count=8)
    loaded = detections.load('coco', str(tmp_path))
    _check_coco(loaded, truth)


def test_coco_as_roboflow_exports_it_each_split_folder_with_its_json(tmp_path):
    truth = detection_data.write_coco(str(tmp_path), count=8)
    os.rename(str(tmp_path / 'val'), str(tmp_path / 'valid'))
    for split, folder in (('train', 'train'), ('val', 'valid')):
        os.rename(str(tmp_path / 'annotations' / ('instances_%s.json' % split)),
                  str(tmp_path / folder / '_annotations.coco.json'))
    os.rmdir(str(tmp_path / 'annotations'))
    loaded = detections.load('coco', str(tmp_path))
    _check_coco(loaded, truth)
    assert sorted(loaded['image_ids'].values()) == list(range(100, 108))


def test_yolo_txt_normalised_boxes_become_pixels_and_bad_lines_are_named(tmp_path):
    truth = detection_data.write_yolo(str(tmp_path), count=6)
    with open(str(tmp_path / 'labels' / 'p0.txt'), 'a') as f:
        f.write('5 0.5 0.5 0.1 0.1\nnot a box\n')
    loaded = detections.load('yolo', str(tmp_path), test_size=2)
    assert loaded['label_names'] == ['bar', 'square']
    assert loaded['train'].num_images == 4 and loaded['test'].num_images == 2
    for name, (boxes, classes) in {**_by_name(loaded['train']), **_by_name(loaded['test'])}.items():
        np.testing.assert_allclose(boxes, np.array(truth[name][0], np.float32).reshape(-1, 4),
                                   atol=0.01)
    found = loaded['problems'].as_dict()
    assert found['boxes of an unknown class'] == 1
    assert found['label lines that are not `class cx cy w h`'] == 1


def _roboflow_export(root, names_yaml):
    """write_yolo's photos arranged as Roboflow exports them: train/ and valid/, each with
    images/ and labels/, and a data.yaml."""
    flat = os.path.join(root, 'flat')
    truth = detection_data.write_yolo(flat, count=6)
    for i, name in enumerate(sorted(truth)):
        split = 'train' if i < 4 else 'valid'
        stem = os.path.splitext(name)[0]
        for kind, file in (('images', name), ('labels', stem + '.txt')):
            os.makedirs(os.path.join(root, split, kind), exist_ok=True)
            os.rename(os.path.join(flat, kind, file), os.path.join(root, split, kind, file))
    with open(os.path.join(root, 'data.yaml'), 'w') as f:
        f.write('train: ../train/images\nval: ../valid/images\n' + names_yaml)
    return truth


@pytest.mark.parametrize('names_yaml', ['nc: 2\nnames: [bar, square]\n',
                                        "names:\n  0: bar\n  1: 'square'\n",
                                        'names:\n- bar\n- square\n'])
def test_yolo_as_roboflow_exports_it_with_ultralytics_data_yaml(tmp_path, names_yaml):
    truth = _roboflow_export(str(tmp_path / 'export'), names_yaml)
    loaded = detections.load('yolo', str(tmp_path / 'export'))
    assert loaded['label_names'] == ['bar', 'square']
    assert loaded['train'].num_images == 4 and loaded['val'].num_images == 2
    for name, (boxes, classes) in {**_by_name(loaded['train']), **_by_name(loaded['val'])}.items():
        np.testing.assert_allclose(boxes, np.array(truth[name][0], np.float32).reshape(-1, 4),
                                   atol=0.01)
        assert classes.tolist() == truth[name][1]


@pytest.mark.parametrize('names_yaml,says', [
    ('nc: 3\nnames: [bar, square]\n', r'data.yaml: nc is 3 but names lists 2 classes'),
    ('names:\n  1: bar\n  2: square\n', r'data.yaml: names has keys \[1, 2\]; they must be the '
                                          r'class indices 0 to 1'),
    ('path: .\n', r"data.yaml: no class names under 'names'"),
    ('names: [bar, null]\n', r"data.yaml: no class names under 'names'"),
    ('names: [bar\n', r'data.yaml cannot be read as YAML \('),
])
def test_a_bad_data_yaml_is_one_line(tmp_path, names_yaml, says):
    _roboflow_export(str(tmp_path), names_yaml)
    with pytest.raises(DataError, match=says):
        detections.load('yolo', str(tmp_path))


def test_a_roboflow_split_without_labels_is_one_line(tmp_path):
    _roboflow_export(str(tmp_path), 'names: [bar, square]\n')
    shutil.rmtree(str(tmp_path / 'valid' / 'labels'))
    with pytest.raises(DataError, match=r'valid has images/ but no labels/'):
        detections.load('yolo', str(tmp_path))


def test_a_folder_of_another_layout_is_one_line(tmp_path):
    with pytest.raises(DataError, match='not a VOC folder'):
        detections.load('voc', str(tmp_path))
    with pytest.raises(DataError, match='instances_'):
        detections.load('coco', str(tmp_path))
    with pytest.raises(DataError, match='class names file'):
        detections.load('yolo', str(tmp_path))


def test_letterbox_and_back_is_the_identity():
    pixels = np.zeros((50, 100, 3), np.uint8)
    image, (scale, top, left) = pipeline.letterbox(pixels, 64)
    assert image.shape == (64, 64, 3) and (scale, top, left) == (0.64, 16, 0)
    assert image[0, 0, 0] == pipeline.GREY and image[32, 32, 0] == 0
    boxes = np.array([[10, 5, 40, 45], [0, 0, 100, 50]], np.float64)
    inside = boxes * scale + [left, top, left, top]
    np.testing.assert_allclose(pipeline.to_photo(inside, 50, 100, 64), boxes, atol=1e-6)


@pytest.mark.parametrize('seed', range(12))
def test_augmentation_keeps_every_box_on_its_object(seed):
    """A bright rectangle on black, augmented: its box still frames it (bright inside, dark
    around) whatever the crop, scale, flip and colour drawn."""
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[20:40, 30:70] = 255
    image, boxes = pipeline.augment(pixels, np.array([[30, 20, 70, 40]], np.float64), 64,
                                    np.random.RandomState(seed))
    assert image.shape == (64, 64, 3) and boxes.shape == (1, 4)
    x1, y1, x2, y2 = boxes[0]
    assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
    grey = image.mean(2)
    inner = grey[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
    ring = np.ones_like(grey, bool)
    ring[max(int(y1) - 2, 0):int(np.ceil(y2)) + 2, max(int(x1) - 2, 0):int(np.ceil(x2)) + 2] = False
    # Colour jitter moves every pixel alike: the object stays the brightest thing, and none of
    # it is outside its box (the grey letterbox and black ground are darker).
    assert inner.size and inner.min() > grey[ring].max() + 20


def test_training_examples_pad_boxes_and_keep_classes(tmp_path):
    detection_data.write_voc(str(tmp_path), count=8)
    train = detections.load('voc', str(tmp_path))['train']
    image, labels, ok = pipeline.training_example(train, 4, 1, np.array([7, 3]), 64)
    assert ok and image.shape == (64, 64, 3) and labels.shape == (4, 5)
    kept = labels[labels[:, 4] >= 0]
    assert len(kept) == len(train.classes[1])
    assert sorted(kept[:, 4].tolist()) == sorted(train.classes[1].tolist())
    assert (labels[len(kept):] == -1).all()
    again = pipeline.training_example(train, 4, 1, np.array([7, 3]), 64)
    np.testing.assert_array_equal(image, again[0])  # keyed: the same draw on resume


def test_a_photo_of_another_size_than_annotated_is_skipped_and_named(tmp_path):
    from datasets import decoding
    from PIL import Image
    detection_data.write_voc(str(tmp_path), count=8)
    Image.new('RGB', (20, 30)).save(str(tmp_path / 'JPEGImages' / 'photo_01.png'))
    train = detections.load('voc', str(tmp_path))['train']
    decoding.forget_skipped_images()
    _, _, ok = pipeline.training_example(train, 4, 1, np.array([0, 0]), 64)
    assert not ok
    assert 'annotated as 96x64' in decoding.skipped_images()[
        str(tmp_path / 'JPEGImages' / 'photo_01.png')]


def test_multi_scale_batches_come_at_several_sizes_each_batch_one(tmp_path):
    import tensorflow as tf
    detection_data.write_voc(str(tmp_path), count=8)
    train = detections.load('voc', str(tmp_path))['train']
    assert pipeline.scale_sizes('64,128', 96) == [64, 96, 128]
    with tf.Graph().as_default():
        images, labels, init, feed = pipeline.input_pipeline(
            train, 2, True, 96, 4, seed=3, sizes=[64, 96, 128])
        with tf.compat.v1.Session() as sess:
            sess.run(init, feed(0, 0))
            shapes = [sess.run(images).shape for _ in range(24)]
            sess.run(init, feed(0, 4))
            resumed = sess.run(images).shape
    assert {shape[1] for shape in shapes} == {64, 96, 128}
    assert all(shape[1] == shape[2] and shape[0] == 2 for shape in shapes)
    assert resumed == shapes[4]  # a resumed epoch draws the size its batch had
