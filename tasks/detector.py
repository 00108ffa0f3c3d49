"""The detector: YOLOv3's head on MobileNetV1's end points, the second task the training loop
trains (tasks/classifier.py says what a task supplies).

Data: a VOC, COCO or YOLO folder (datasets/detections.py), letterboxed and augmented box-safe
(pipelines/detection.py). Step: detection/loss.py's YOLOv3 loss; with
--freeze_backbone_epochs N, MobilenetV1's gradients are held at zero for the first N epochs
(the head learns on the backbone as it came), then every layer trains. Scoring: mAP@0.5 (VOC
all-point) and COCO's AP, AP50, AP75, AR100 by pycocotools (detection/average_precision.py)
on the test and validation splits; best/ keeps the best mAP@0.5.
"""
import os

import numpy as np
import tensorflow as tf

import mobilenet
from datasets import detections
from detection import anchors as anchor_boxes
from detection import average_precision
from detection import loss as yolo_loss
from detection import postprocess
from pipelines import detection as pipeline
from preflight.errors import DataError, UsageError
from training import model
from training import optimization

v1 = tf.compat.v1

NAME = 'detect'
BEST_METRIC = 'mAP50'

# The frozen detector's node names (freeze_graph.py, deployment/).
INPUT_NODE = 'input'
OUTPUT_NODES = ('boxes', 'scores', 'classes', 'count')
# Frozen without suppression (freeze_graph.py --nms 0, for runtimes without a suppression op,
# such as OpenCV's dnn): every anchor's box [1, N, 4] and class scores [1, N, C].
CANDIDATE_NODES = ('candidate_boxes', 'candidate_scores')


def load_data(cfg):
    """The splits (Boxes), class names, COCO category ids, and the facts a plan keeps: split
    sizes, steps per epoch, the anchors resolved (printed), what was skipped reading."""
    loaded = detections.load(cfg['dataset'], cfg['data_dir'], cfg['val_size'], cfg['test_size'],
                             cfg['seed'])
    for line in loaded['problems'].lines():
        print(line, flush=True)
    names = loaded['label_names']
    train = loaded['train']
    boxes = detections.box_counts(train, len(names))
    if not boxes.sum():
        # Nothing but background to learn: every score would be 0 after a whole run.
        ignored = sum(int(flags.sum()) for flags in train.ignored)
        raise DataError('--data_dir %s: none of its %d training images has a box to train on%s'
                        % (cfg['data_dir'], train.num_images,
                           ' (its %d boxes are all \'difficult\' or \'iscrowd\', left out of '
                           'training)' % ignored if ignored else ''))
    ends = model.detection_end_points(cfg)
    count = 3 * len(ends)
    anchors = anchor_boxes.resolve(cfg['anchors'], train, cfg['image_size'], count, cfg['seed'])
    sizes = anchor_boxes.letterboxed_sizes(train, cfg['image_size'])
    print('Anchors (%s, w x h at %d): %s; mean best IoU with the training boxes %.3f' % (
        cfg['anchors'] if cfg['anchors'] in ('yolov3', 'kmeans') else 'given',
        cfg['image_size'], ' '.join('%gx%g' % tuple(a) for a in anchors),
        anchor_boxes.mean_best_iou(sizes, anchors)), flush=True)
    data = dict(train_images=train, val_images=loaded['val'], test_images=loaded['test'],
                label_names=names, category_ids=loaded['category_ids'])
    split_sizes = {split: data[split + '_images'].num_images for split in ('train', 'val', 'test')}
    if split_sizes['train'] < cfg['batch_size']:
        raise UsageError('--batch_size %d is larger than the %d training images'
                         % (cfg['batch_size'], split_sizes['train']))
    data['facts'] = dict(
        split_sizes=split_sizes,
        steps_per_epoch=cfg['steps_per_epoch'] or split_sizes['train'] // cfg['batch_size'],
        classes_not_trained=[names[i] for i in np.flatnonzero(boxes == 0)],
        held_out=None, scored_split='test' if split_sizes['test'] else
        'val' if split_sizes['val'] else None,
        best_on='val' if split_sizes['val'] else 'test' if split_sizes['test'] else None,
        train_shards=0, worker_shards=None, nested_images=0,
        anchor_boxes=anchors, category_ids=list(loaded['category_ids']),
        train_boxes=int(boxes.sum()), annotation_problems=loaded['problems'].as_dict())
    return data


def input_pipeline(cfg, data, split, training, worker=(0, 1)):
    return pipeline.input_pipeline(
        data[split + '_images'], cfg['batch_size'] if training else cfg['eval_batch_size'],
        training, cfg['image_size'], cfg['max_boxes'], seed=cfg['seed'],
        sizes=pipeline.scale_sizes(cfg['multi_scale'], cfg['image_size']), worker=worker)


def strides(cfg):
    all_strides = mobilenet.end_point_strides(mobilenet.STEMS[cfg['stem']])
    return [all_strides[name] for name in model.detection_end_points(cfg)]


def step(cfg, images, labels, data, global_step, lr, replica=(0, 1)):
    """(loss, {'box', 'objectness', 'classes'}, minimize op, model variables) of one batch."""
    num_classes = len(data['label_names'])
    outputs = model.build_detector(images, cfg, num_classes, is_training=True)
    model_variables = v1.global_variables(scope='MobilenetV1/') + v1.global_variables(
        scope='YoloV3/')
    for flag in ('trainable_scopes', 'checkpoint_exclude_scopes'):
        model.check_scopes(flag, cfg[flag], model_variables)
    trained = model.trained_variables(cfg, model_variables)
    shape = tf.shape(images)
    loss, terms = yolo_loss.yolo_loss(
        outputs, labels[..., :4], tf.cast(labels[..., 4], tf.int32), cfg['anchor_boxes'],
        strides(cfg), num_classes, (shape[1], shape[2]), cfg['ignore_threshold'],
        cfg['box_loss'])
    regularization = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    total = loss + tf.add_n(regularization) if regularization else loss
    optimizer = optimization.make_optimizer(cfg, lr)
    gradients = optimizer.compute_gradients(total / replica[1], var_list=trained)
    if cfg['freeze_backbone_epochs']:
        # The head alone learns first: the backbone's gradients are zero (its optimizer slots
        # stay zero, so nothing moves it) until the steps of the frozen epochs are done.
        progress = tf.cast(global_step, tf.float32) / float(cfg['steps_per_epoch'])
        open_backbone = tf.cast(progress >= cfg['freeze_backbone_epochs'], tf.float32)
        gradients = [(g * open_backbone if g is not None and v.op.name.startswith('MobilenetV1/')
                      else g, v) for g, v in gradients]
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        minimize = optimizer.apply_gradients(gradients, global_step)
    return loss, terms, minimize, model_variables


def detections_of(images, cfg, num_classes, reuse=None, getter=None):
    """(boxes, scores, classes, count) of each image of a batch, in input pixels."""
    outputs = model.build_detector(images, cfg, num_classes, is_training=False, reuse=reuse,
                                   getter=getter)
    boxes, scores = postprocess.decode(outputs, cfg['anchor_boxes'], strides(cfg))
    size = (cfg['image_size'], cfg['image_size'])
    return postprocess.select_batch(boxes, scores, cfg['score_threshold'], cfg['iou_threshold'],
                                    cfg['max_detections'], size)


def evaluation(cfg, data, getter=None):
    """{split: (initializer, feed, per-batch fetches, finish)} of the test and validation
    splits there are; finish(batches) gives the split's figures (scores)."""
    evaluations = {}
    for split in ('test', 'val'):
        boxes_split = data[split + '_images']
        if not boxes_split.num_images:
            continue
        images, indices, init, feed = input_pipeline(cfg, data, split, training=False)
        found = detections_of(images, cfg, len(data['label_names']), reuse=True, getter=getter)
        fetches = dict(zip(OUTPUT_NODES, found), index=indices)
        evaluations[split] = (init, feed, fetches, _finisher(cfg, data, boxes_split))
    return evaluations


def _finisher(cfg, data, split):
    def finish(batches):
        found, scored = collect(batches, split, cfg['image_size'], data['category_ids'])
        return scores(found, split, data['label_names'], data['category_ids'], scored)
    return finish


def collect(batches, split, image_size, category_ids):
    """(COCO-format detections in the photos' pixels, indices of the images scored) from
    evaluation batches {'boxes', 'scores', 'classes', 'count', 'index'}."""
    found, scored = [], []
    for batch in batches:
        for boxes, values, classes, count, index in zip(
                batch['boxes'], batch['scores'], batch['classes'], batch['count'], batch['index']):
            scored.append(int(index))
            found += to_photo(boxes[:count], values[:count], classes[:count], int(index), split,
                              image_size, category_ids)
    return found, sorted(scored)


def to_photo(boxes, values, classes, index, split, image_size, category_ids):
    """COCO-format detections of image `index` of `split` from boxes in letterboxed input
    pixels: mapped back through the letterbox, clipped to the photo."""
    height, width = split.sizes[index]
    found = []
    for (x1, y1, x2, y2), value, label in zip(
            pipeline.to_photo(boxes, height, width, image_size), values, classes):
        if x2 <= x1 or y2 <= y1:
            continue
        found.append(dict(image_id=index + 1, category_id=int(category_ids[int(label)]),
                          bbox=[round(float(x1), 2), round(float(y1), 2),
                                round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
                          score=round(float(value), 5),
                          file_name=os.path.basename(split.paths[index])))
    return found


def scores(found, split, names, category_ids, images):
    """{'mAP50', 'AP', 'AP50', 'AP75', 'AR100', 'per_class'} of detections on a split."""
    mean, per_class = average_precision.voc_map(found, split, category_ids, images)
    coco = average_precision.coco_metrics(found, split, names, category_ids, images)
    return dict(mAP50=mean, AP=coco['AP'], AP50=coco['AP50'], AP75=coco['AP75'],
                AR100=coco['AR100'],
                per_class={name: None if ap is None else round(ap, 4)
                           for name, ap in zip(names, per_class)})


def epoch_parts(record):
    parts = []
    if record['train_loss'] is not None:
        parts.append('loss %.3f (box %.3f, obj %.3f, cls %.3f)' % (
            record['train_loss'], record['train_box'], record['train_objectness'],
            record['train_classes']))
    for split in ('test', 'val'):
        if record.get(split + '_mAP50') is not None:
            parts.append('%s mAP50 %.4f AP %.4f' % (split, record[split + '_mAP50'],
                                                    record[split + '_AP']))
    return parts


def summary(record, best):
    return dict(final_test_mAP50=record.get('test_mAP50'), final_test_AP=record.get('test_AP'),
                best_mAP50=round(float(best), 6))


def inference_graph(cfg, num_classes, image_size=None, suppress=True):
    """input [1, S, S, 3] raw pixels (letterboxed) -> MobileNetV1 -> YOLOv3 -> decoding and
    per-class suppression: (input, [boxes [max, 4] x1 y1 x2 y2 in input pixels, scores [max],
    classes int32 [max], count int32]) under OUTPUT_NODES' names; without `suppress`, (input,
    [boxes [1, N, 4], scores [1, N, C]]) of every anchor, under CANDIDATE_NODES' names."""
    size = image_size or cfg['image_size']
    images = v1.placeholder(tf.float32, [1, size, size, 3], name=INPUT_NODE)
    outputs = model.build_detector(images, cfg, num_classes, is_training=False)
    boxes, values = postprocess.decode(outputs, cfg['anchor_boxes'], strides(cfg))
    if not suppress:
        return images, [tf.identity(t, name=name) for t, name in zip((boxes, values),
                                                                     CANDIDATE_NODES)]
    found = postprocess.select(boxes[0], values[0], cfg['score_threshold'],
                               cfg['iou_threshold'], cfg['max_detections'], size=(size, size))
    return images, [tf.identity(t, name=name) for t, name in zip(found, OUTPUT_NODES)]
