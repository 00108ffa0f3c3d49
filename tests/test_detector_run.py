"""train.py --task detect end to end on tiny synthetic photos: the loop's records, exact resume,
evaluate.py's figures and COCO-format detections, freeze_graph.py's .pb, TFLite and ONNX
agreeing with the checkpoint, predict.py's boxes and drawn photos, and the errors users see."""
import json
import os

import numpy as np
import pytest

import evaluate
import freeze_graph
import predict
import train
from tests import detection_data

# Small and quick: width 0.25, a lite head of depth 16, 64x64 inputs, batches of 4.
SMALL = ['--task', 'detect', '--width', '0.25', '--image_size', '64', '--head', 'lite',
         '--head_depth', '16', '--batch_size', '4', '--eval_batch_size', '4',
         '--freeze_backbone_epochs', '0', '--freeze_batch_norm', '0', '--warmup_epochs', '0',
         '--eval_every', '1', '--max_boxes', '4', '--score_threshold', '0.0001']


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp('voc')
    detection_data.write_voc(str(root), count=12)
    return str(root)


@pytest.fixture(scope='module')
def run(voc, tmp_path_factory):
    """A two-epoch run (2 steps each): its folder."""
    ckpt = str(tmp_path_factory.mktemp('run') / 'yolo')
    assert train.main(SMALL + ['--data_dir', voc, '--ckpt_dir', ckpt, '--epochs', '2',
                               '--steps_per_epoch', '2']) == 0
    return ckpt


def _records(ckpt):
    with open(os.path.join(ckpt, 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_train_records_losses_and_map_each_scored_epoch(run):
    records = _records(run)
    assert [r['epoch'] for r in records] == [1, 2]
    for key in ('train_loss', 'train_box', 'train_objectness', 'train_classes', 'test_mAP50',
                'test_AP', 'test_AP50', 'test_AP75', 'test_AR100'):
        assert all(np.isfinite(r[key]) for r in records), key
    assert set(records[-1]['test_per_class']) == {'bar', 'square'}
    with open(os.path.join(run, 'config.json')) as f:
        saved = json.load(f)
    assert saved['task'] == 'detect' and len(saved['anchor_boxes']) == 9
    assert saved['label_names'] == ['bar', 'square']


def test_resume_continues_where_it_stopped(voc, run, tmp_path, capsys):
    import shutil
    copy = str(tmp_path / 'resumed')
    shutil.copytree(run, copy)
    assert train.main(SMALL + ['--data_dir', voc, '--ckpt_dir', copy, '--epochs', '3',
                               '--steps_per_epoch', '2']) == 0
    assert 'Resuming from' in capsys.readouterr().out
    assert [r['epoch'] for r in _records(copy)] == [1, 2, 3]
    assert _records(copy)[-1]['step'] == 6


def test_kmeans_anchors_are_printed_and_saved(tmp_path, capsys):
    voc = str(tmp_path / 'voc')
    detection_data.write_voc(voc, count=40)  # boxes of 9 distinct shapes and more
    ckpt = str(tmp_path / 'kmeans')
    assert train.main(SMALL + ['--data_dir', voc, '--ckpt_dir', ckpt, '--epochs', '1',
                               '--steps_per_epoch', '1', '--anchors', 'kmeans']) == 0
    out = capsys.readouterr().out
    assert 'Anchors (kmeans, w x h at 64)' in out
    with open(os.path.join(ckpt, 'config.json')) as f:
        anchors = json.load(f)['anchor_boxes']
    areas = [w * h for w, h in anchors]
    assert len(anchors) == 9 and areas == sorted(areas)


def test_evaluate_gives_map_coco_figures_and_coco_json(run, voc, tmp_path, capsys):
    out_json = str(tmp_path / 'found.json')
    assert evaluate.main([run, '--detections', out_json]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ('mAP50', 'AP', 'AP50', 'AP75', 'AR100'):
        assert 0 <= last[key] <= 1
    assert set(last['per_class']) == {'bar', 'square'} and last['detections'] == out_json
    assert last['mAP50'] == pytest.approx(_records(run)[-1]['test_mAP50'], abs=1e-4)
    with open(out_json) as f:
        found = json.load(f)
    assert found and set(found[0]) == {'image_id', 'category_id', 'bbox', 'score', 'file_name'}
    assert {d['category_id'] for d in found} <= {1, 2}
    assert all(d['bbox'][2] > 0 and d['bbox'][3] > 0 for d in found)
    assert all(d['bbox'][0] + d['bbox'][2] <= 96.01 and d['bbox'][1] + d['bbox'][3] <= 64.01
               for d in found)


@pytest.fixture(scope='module')
def frozen(run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('frozen') / 'yolo.pb')
    assert freeze_graph.main(['--ckpt', run, '--output', out, '--tflite', 'float32,int8',
                              '--calibration_images', '4', '--onnx']) == 0
    return out


def _detect(path, image):
    from deployment import detectors
    boxes, scores, classes, count = detectors.load(path).detect(image)
    count = int(np.asarray(count).reshape(()))
    return (np.asarray(boxes).reshape(-1, 4)[:count], np.asarray(scores).reshape(-1)[:count],
            np.asarray(classes).reshape(-1)[:count])


def test_frozen_detector_matches_the_checkpoint_in_every_runtime(run, frozen):
    from pipelines import detection
    pixels, _, _ = detection_data.photo(3)
    image = detection.letterbox(pixels, 64)[0].astype(np.float32)
    boxes, scores, classes = _detect(run, image)
    assert len(scores)
    stem = frozen[:-3]
    with open(stem + '.json') as f:
        info = json.load(f)
    assert info['task'] == 'detect' and info['outputs'] == ['boxes', 'scores', 'classes', 'count']
    assert info['labels'] == ['bar', 'square'] and len(info['anchors']) == 9
    for path in (frozen, stem + '.tflite', stem + '.onnx'):
        got_boxes, got_scores, got_classes = _detect(path, image)
        # The top detections agree; suppression may break near-ties apart further down.
        top = min(5, len(scores))
        np.testing.assert_allclose(got_scores[:top], scores[:top], atol=1e-4, err_msg=path)
        np.testing.assert_allclose(got_boxes[:top], boxes[:top], atol=1e-2, err_msg=path)
        assert got_classes[:top].tolist() == classes[:top].tolist()
    _, int8_scores, _ = _detect(stem + '_int8.tflite', image)
    assert np.all(np.isfinite(int8_scores))


def test_evaluate_scores_a_frozen_detector_on_its_runs_data(frozen, capsys):
    assert evaluate.main([frozen]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last['dataset'] == 'voc' and last['detections'].endswith('yolo_pb_detections_test.json')


def test_frozen_without_suppression_runs_in_opencv_and_scores_as_with_it(run, frozen, tmp_path,
                                                                         capsys):
    import cv2
    import onnxruntime
    from pipelines import detection
    raw = str(tmp_path / 'raw.pb')
    assert freeze_graph.main(['--ckpt', run, '--output', raw, '--tflite', 'float32', '--nms', '0',
                              '--onnx']) == 0
    with open(str(tmp_path / 'raw.json')) as f:
        info = json.load(f)
    assert info['suppression'] is False
    assert info['outputs'] == ['candidate_boxes', 'candidate_scores']
    # OpenCV's dnn, which runs no suppression op, reads the ONNX file and gives ONNX Runtime's
    # candidates: every anchor of the 8x8, 4x4 and 2x2 maps of a 64x64 input, 3 a cell.
    image = detection.letterbox(detection_data.photo(3)[0], 64)[0].astype(np.float32)[None]
    theirs = onnxruntime.InferenceSession(str(tmp_path / 'raw.onnx')).run(
        ['candidate_boxes:0', 'candidate_scores:0'], {'input:0': image})
    assert theirs[0].shape == (1, 3 * (64 + 16 + 4), 4) and theirs[1].shape == (1, 252, 2)
    net = cv2.dnn.readNet(str(tmp_path / 'raw.onnx'))
    net.setInput(image)
    ours = dict(zip(net.getUnconnectedOutLayersNames(), net.forward(
        net.getUnconnectedOutLayersNames())))
    np.testing.assert_allclose(ours['candidate_boxes:0'].reshape(1, -1, 4), theirs[0], atol=1e-3)
    np.testing.assert_allclose(ours['candidate_scores:0'].reshape(1, -1, 2), theirs[1], atol=1e-5)
    # The detectors suppress as the graph would: its detections, and its figures (to near-ties
    # of this untrained model's scores, which runtimes may order apart).
    suppressed = _detect(frozen, image[0])
    for got, want in zip(_detect(raw, image[0]), suppressed):
        np.testing.assert_allclose(got, want, atol=1e-5)
    figures = []
    for path in (frozen, raw, str(tmp_path / 'raw.tflite'), str(tmp_path / 'raw.onnx')):
        assert evaluate.main([path]) == 0
        last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        figures.append((last['mAP50'], last['AP']))
    np.testing.assert_allclose(figures, figures[:1] * 4, atol=2e-3)
    assert freeze_graph.main(['--ckpt', run, '--output', str(tmp_path / 'b.pb'), '--backbone',
                              'detection', '--nms', '0']) == 2
    assert ('freeze_graph.py: error: --nms 0: a backbone has no suppression to leave out'
            in capsys.readouterr().err)


def test_predict_prints_boxes_and_draws_them(run, tmp_path, capsys):
    from PIL import Image
    paths = []
    for i in (0, 1):
        pixels, _, _ = detection_data.photo(i)
        paths.append(str(tmp_path / ('p%d.jpg' % i)))
        Image.fromarray(pixels).save(paths[-1])
    drawn = str(tmp_path / 'drawn')
    assert predict.main([run] + paths + ['--output_dir', drawn, '--score_threshold', '0']) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r['image'] for r in results] == paths
    for result in results:
        assert result['detections'] and result['drawn'] == os.path.join(drawn, os.path.basename(
            result['image']))
        with Image.open(result['drawn']) as image:
            assert image.size == (96, 64)
        for d in result['detections']:
            x1, y1, x2, y2 = d['box']
            assert 0 <= x1 <= x2 <= 96 and 0 <= y1 <= y2 <= 64 and d['label'] in ('bar', 'square')


@pytest.mark.parametrize('flags, message', [
    (['--dataset', 'cifar10'], '--dataset cifar10 is not a detection dataset'),
    (['--image_size', '70'], 'multiples of 32'),
    (['--multi_scale', '320,300'], "--multi_scale must be 'MIN,MAX'"),
    (['--detect_end_points', 'Conv2d_5_pointwise,Conv2d_13_pointwise'], 'twice the one before'),
    (['--head', 'huge'], '--head must be one of'),
    (['--anchors', '1,2 3'], "--anchors must be 'yolov3', 'kmeans' or pairs"),
    (['--cutout', '8'], '--cutout applies to the classifier'),
])
def test_bad_detector_flags_are_one_line(voc, tmp_path, capsys, flags, message):
    ckpt = str(tmp_path / 'bad')
    code = train.main(SMALL + ['--data_dir', voc, '--ckpt_dir', ckpt, '--epochs', '1'] + flags)
    err = capsys.readouterr().err
    assert code == 2 and message in err and 'Traceback' not in err
    assert not os.path.exists(os.path.join(ckpt, 'config.json'))


def test_classifier_flags_on_a_detector_are_one_line(run, tmp_path, capsys):
    assert evaluate.main([run, '--flip_tta']) == 2
    assert '--flip_tta applies to classifiers' in capsys.readouterr().err
    names = tmp_path / 'names.txt'
    names.write_text('bar\nsquare\n')
    assert predict.main([run, 'x.jpg', '--labels', str(names)]) == 2
    assert '--labels applies to classifiers' in capsys.readouterr().err


def test_a_detector_checkpoint_without_its_config_is_one_line(run, tmp_path, capsys):
    import shutil
    bare = tmp_path / 'bare'
    bare.mkdir()
    prefix = os.path.join(run, 'model.ckpt-4')
    for suffix in ('.index', '.data-00000-of-00001'):
        shutil.copy(prefix + suffix, str(bare / ('model' + suffix)))
    assert evaluate.main([str(bare / 'model')]) == 2
    err = capsys.readouterr().err
    assert "a detector's checkpoint without the config.json" in err and 'Traceback' not in err


def test_a_frozen_backbone_stays_as_loaded_then_trains(run, voc, tmp_path):
    from checkpoints import reading
    ckpt = str(tmp_path / 'stages')
    flags = SMALL + ['--data_dir', voc, '--ckpt_dir', ckpt, '--steps_per_epoch', '2',
                     '--load_pretrain', '1', '--pretrain_path', run, '--freeze_batch_norm', '1',
                     '--freeze_backbone_epochs', '1']

    def weights(prefix):
        reader, shapes = reading.open_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in shapes
                if name.startswith(('MobilenetV1/', 'YoloV3/')) and '/Adam' not in name}

    start = weights(os.path.join(run, 'model.ckpt-4'))
    assert train.main(flags + ['--epochs', '1']) == 0
    frozen = weights(os.path.join(ckpt, 'model.ckpt-2'))
    backbone = [n for n in start if n.startswith('MobilenetV1/')]
    assert all(np.array_equal(start[n], frozen[n]) for n in backbone)
    assert not all(np.array_equal(start[n], frozen[n]) for n in start if n.startswith('YoloV3/'))
    assert train.main(flags + ['--epochs', '2']) == 0
    opened = weights(os.path.join(ckpt, 'model.ckpt-4'))
    moved = [n for n in backbone if n.endswith('weights') and
             not np.array_equal(frozen[n], opened[n])]
    assert len(moved) == len([n for n in backbone if n.endswith('weights')])


def test_resume_after_ctrl_c_is_exact(voc, tmp_path, monkeypatch):
    """Two epochs straight, and the same run stopped by Ctrl-C in its third step then run
    again: the same weights, as the order and augmentation are keyed by the step."""
    from checkpoints import reading
    from training import trainer
    flags = SMALL + ['--data_dir', voc, '--steps_per_epoch', '2', '--seed', '5', '--epochs', '2']
    straight, split = str(tmp_path / 'straight'), str(tmp_path / 'split')
    assert train.main(flags + ['--ckpt_dir', straight]) == 0
    real_update, updates = trainer.tqdm.update, []

    def interrupting_update(self, n=1):
        updates.append(n)
        if len(updates) == 3:
            raise KeyboardInterrupt
        return real_update(self, n)

    monkeypatch.setattr(trainer.tqdm, 'update', interrupting_update)
    assert train.main(flags + ['--ckpt_dir', split]) == 130
    monkeypatch.setattr(trainer.tqdm, 'update', real_update)
    assert train.main(flags + ['--ckpt_dir', split]) == 0
    a_reader, shapes = reading.open_checkpoint(os.path.join(straight, 'model.ckpt-4'))
    b_reader, _ = reading.open_checkpoint(os.path.join(split, 'model.ckpt-4'))
    compared = [name for name in shapes if not name.endswith('_seconds')]  # clocks differ
    assert any(name.startswith('YoloV3/') for name in compared)
    for name in compared:
        np.testing.assert_allclose(a_reader.get_tensor(name), b_reader.get_tensor(name),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
