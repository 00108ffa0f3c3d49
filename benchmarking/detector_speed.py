"""The detector's speed (benchmark.py --task detect): training images/s against the step's FLOPs
and the machine's matmul peak (utilisation), the input pipeline's share, and the frozen
detector's latency at each inference size.

In one run, interleaved over --repeats repetitions (medians quoted):
  train      tasks/detector.py's training step on a fixed batch held in a variable (no
             pipeline), at --image_size and --batch_size;
  real path  train.py's graph (training/train_graph.py) on a VOC folder (--data_dir): the
             pipeline's decoding, box-safe augmentation and letterbox, then the step, running
             the loop's fetches; skipped with a note when --data_dir is not a VOC folder;
  pipeline   that pipeline alone: images/s it delivers (its share of a real step is
             real path / pipeline);
  matmul     a float32 matmul: the attainable GFLOP/s, against which training FLOPs are quoted;
  latency    the frozen detector (decoding and suppression inside), one image, in TensorFlow
             and LiteRT (float32), at each of --latency_sizes.
FLOPs are counted from the graph: 2 x the multiply-adds of every convolution (backbone and
head) of one image at --image_size; a training image is 3 x that (forward, and twice for the
backward pass), as benchmark.py counts the classifier's.
"""
import os
import statistics
import time

import numpy as np
import tensorflow as tf

from benchmarking import speed
from datasets import detection_layouts
from detection import anchors
from preflight.errors import DataError
from tasks import detector
from training import model
from training import optimization
from training import plan as run_plan
from training import train_graph

v1 = tf.compat.v1

_PROGRESS = 0.5  # the schedule's midpoint: a learning rate of the run's middle


def forward_macs(cfg, num_classes, size):
    """Multiply-adds of every convolution of the detector on one size x size image."""
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, [1, size, size, 3])
        model.build_detector(images, cfg, num_classes, is_training=False)
    macs = 0
    for op in graph.get_operations():
        if op.type in ('Conv2D', 'DepthwiseConv2dNative'):
            out = op.outputs[0].shape.as_list()
            kernel = op.inputs[1].shape.as_list()
            per_output = kernel[0] * kernel[1] * (kernel[2] if op.type == 'Conv2D' else 1)
            macs += out[1] * out[2] * out[3] * per_output
    return macs


def _fixed_batch(batch, size, max_boxes):
    """Random pixels and one centred box of class 0 per image, in non-trainable variables."""
    images = v1.Variable(tf.random.uniform([batch, size, size, 3], 0.0, 255.0, seed=1),
                         trainable=False, name='fixed_images')
    row = [size / 4, size / 4, 3 * size / 4, 3 * size / 4, 0.0]
    labels = np.full((batch, max_boxes, 5), -1, np.float32)
    labels[:, 0] = row
    return images, v1.Variable(labels, trainable=False, name='fixed_labels')


class Train:
    def __init__(self, args, cfg, data):
        self.batch = cfg['batch_size']
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(cfg['seed'])
            images, labels = _fixed_batch(cfg['batch_size'], cfg['image_size'], cfg['max_boxes'])
            global_step = v1.train.get_or_create_global_step()
            lr = optimization.learning_rate(cfg, tf.constant(_PROGRESS))
            _, _, self.op, _ = detector.step(cfg, images, labels, data, global_step, lr)
            init = v1.global_variables_initializer()
        self.sess = speed._session(graph, speed.session_config(args, cfg), init)

    def images_per_sec(self, steps):
        return steps * self.batch / speed._timed_runs(self.sess, self.op, steps)


class RealPath:
    def __init__(self, args, plan, data):
        self.batch = plan['batch_size']
        graph = tf.Graph()
        with graph.as_default():
            g = train_graph.build_graph(plan, data, detector)
        self.sess = speed._session(graph, speed.session_config(args, plan), g.init)
        self.sess.run(g.train_init, g.train_feed(0, 0))
        self.fetches = [g.train_op, g.loss, g.train_metrics, g.lr]

    def images_per_sec(self, steps):
        return steps * self.batch / speed._timed_runs(self.sess, self.fetches, steps)


class Pipeline:
    MIN_BATCHES = 20

    def __init__(self, args, plan, data):
        self.batch = plan['batch_size']
        graph = tf.Graph()
        with graph.as_default():
            self.images, _, init, feed = detector.input_pipeline(plan, data, 'train', True)
        self.sess = speed._session(graph, speed.session_config(args, plan), init, feed())

    def images_per_sec(self, steps):
        steps = max(steps, self.MIN_BATCHES)
        return steps * self.batch / speed._timed_runs(self.sess, self.images, steps)


class Latency:
    """The frozen detector at one size, in TensorFlow and in LiteRT (float32)."""

    def __init__(self, args, cfg, num_classes, size):
        from deployment import freezing
        from ai_edge_litert.interpreter import Interpreter
        cfg = dict(cfg, image_size=size)
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(cfg['seed'])
            detector.inference_graph(cfg, num_classes)
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                frozen = v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), list(detector.OUTPUT_NODES))
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.import_graph_def(frozen, name='')
        self.sess = v1.Session(graph=self.graph, config=speed.session_config(args))
        self.input = self.graph.get_tensor_by_name(detector.INPUT_NODE + ':0')
        self.outputs = [self.graph.get_tensor_by_name(n + ':0') for n in detector.OUTPUT_NODES]
        self.image = np.random.RandomState(0).uniform(0, 255, (1, size, size, 3)).astype(
            np.float32)
        self.interpreter = Interpreter(
            model_content=freezing.to_tflite(frozen, 'float32', outputs=detector.OUTPUT_NODES),
            num_threads=os.cpu_count())
        self.interpreter.allocate_tensors()
        self.tflite_input = self.interpreter.get_input_details()[0]['index']

    def tf_ms(self, runs):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.sess.run(self.outputs, {self.input: self.image})
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    def tflite_ms(self, runs):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.set_tensor(self.tflite_input, self.image)
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)


def _data(cfg):
    """A detection task's data: the VOC folder's (real path and pipeline), or two classes of
    nothing (the synthetic step) when there is none."""
    try:
        plan, data = run_plan.resolve(cfg, detector)
        return plan, data, None
    except DataError as e:  # a folder that is not one: the note says why
        empty = detection_layouts.empty_split()
        data = dict(label_names=['object'], train_images=empty)
        plan = dict(cfg, anchor_boxes=anchors.resolve(
            cfg['anchors'] if cfg['anchors'] != 'kmeans' else 'yolov3', None, cfg['image_size'],
            3 * len(model.detection_end_points(cfg))), steps_per_epoch=100)
        return plan, data, 'real path and pipeline skipped: --data_dir %s is not a VOC folder ' \
                           'it can read (%s)' % (cfg['data_dir'], e)


def run(args, cfg, log=print):
    """The detector's measurements; the summary dict."""
    plan, data, note = _data(cfg)
    notes = [note] if note else []
    num_classes = len(data['label_names'])
    macs = forward_macs(plan, num_classes, cfg['image_size'])
    flops = dict(forward_macs=macs, forward_flops=2 * macs, train_flops_per_image=6 * macs,
                 formula='3 x 2 x %d MACs (every convolution of backbone and head at %d) = %d '
                         'FLOPs per training image' % (macs, cfg['image_size'], 6 * macs))
    log('Building the training step, the real path, the pipeline and the frozen detectors...',
        flush=True)
    train = Train(args, plan, data)
    real = None if note else RealPath(args, plan, data)
    pipeline = None if note else Pipeline(args, plan, data)
    matmul = speed.Matmul(args)
    sizes = [int(s) for s in args.latency_sizes.split(',')]
    latency = {size: Latency(args, plan, num_classes, size) for size in sizes}
    log('Warming up...', flush=True)
    train.images_per_sec(max(args.warmup, 1))
    for part in (real, pipeline):
        if part is not None:
            part.images_per_sec(max(args.warmup, 1))
    matmul.warm_up(2)
    for one in latency.values():
        one.tf_ms(3)
        one.tflite_ms(3)
    raw = {k: [] for k in ['matmul_gflops', 'train_images_per_sec', 'real_path_images_per_sec',
                           'pipeline_images_per_sec'] + ['%s_latency_ms_%d' % (runtime, size)
                                                         for size in sizes
                                                         for runtime in ('tf', 'tflite')]}
    for rep in range(args.repeats):
        raw['matmul_gflops'].append(matmul.gflops(args.matmul_iters))
        raw['train_images_per_sec'].append(train.images_per_sec(args.steps))
        if real is not None:
            raw['real_path_images_per_sec'].append(real.images_per_sec(args.steps))
            raw['pipeline_images_per_sec'].append(pipeline.images_per_sec(args.steps))
        for size, one in latency.items():
            raw['tf_latency_ms_%d' % size].append(one.tf_ms(args.latency_runs))
            raw['tflite_latency_ms_%d' % size].append(one.tflite_ms(args.latency_runs))
        log('repetition %d/%d: %s' % (rep + 1, args.repeats, ', '.join(
            '%s %.1f' % (key, values[-1]) for key, values in raw.items() if values)), flush=True)
    med = {k: speed._median(v) for k, v in raw.items()}
    med['train_gflops'] = med['train_images_per_sec'] * flops['train_flops_per_image'] / 1e9
    med['utilisation'] = med['train_gflops'] / med['matmul_gflops']
    if med['real_path_images_per_sec']:
        med['real_vs_synthetic'] = med['real_path_images_per_sec'] / med['train_images_per_sec']
        med['pipeline_vs_step'] = med['pipeline_images_per_sec'] / med['train_images_per_sec']
    return dict(task='detect', flags=vars(args), tf_version=tf.__version__, cpu=cfg['cpu'],
                onednn=cfg['onednn'], cpu_count=os.cpu_count(), flops=flops,
                medians={k: None if v is None else round(v, 4) for k, v in med.items()},
                raw={k: [round(x, 4) for x in v] for k, v in raw.items()}, notes=notes,
                head=cfg['head'], head_depth=cfg['head_depth'], width=cfg['width'])


def format_report(summary):
    med, lines = summary['medians'], []
    lines.append('detector training at %d, batch %d: %.1f images/s on a fixed batch, %.1f '
                 'GFLOP/s of %.1f GFLOP/s matmul peak (utilisation %.0f%%)' % (
                     summary['flags']['image_size'], summary['flags']['batch_size'],
                     med['train_images_per_sec'], med['train_gflops'], med['matmul_gflops'],
                     100 * med['utilisation']))
    if med.get('real_path_images_per_sec'):
        lines.append('train.py path (pipeline, augmentation, step): %.1f images/s, %.2f of the '
                     'fixed batch\'s; the pipeline alone delivers %.1f images/s, %.1fx the step'
                     % (med['real_path_images_per_sec'], med['real_vs_synthetic'],
                        med['pipeline_images_per_sec'], med['pipeline_vs_step']))
    for key in sorted((k for k in med if k.startswith('tf_latency_ms_')),
                      key=lambda k: int(k.rsplit('_', 1)[1])):
        size = key.rsplit('_', 1)[1]
        lines.append('frozen detector at %s: %.1f ms in TensorFlow, %.1f ms in LiteRT (float32), '
                     'one image' % (size, med[key], med['tflite_latency_ms_' + size]))
    lines += ['note: ' + note for note in summary['notes']]
    return '\n'.join(lines)
