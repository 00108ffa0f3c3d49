"""Training and inference speed of this repository's MobileNetV1 against Keras's, side by side.

    python3 benchmark.py                      # width 1.0, 32x32, ImageNet stem, batch 128
    python3 benchmark.py --stem cifar         # the stride-1 stem train.py uses by default
    python3 benchmark.py --image_size 224 --batch_size 32 --steps 5
    python3 benchmark.py --skip_keras --output results/benchmark/ours.json

In one process, for the same width, input size, class count and batch:

  train      our training step (train.build_model + softmax cross-entropy +
             L2 + UPDATE_OPS + train.make_optimizer(...).minimize, graph mode,
             one fixed random batch held in a variable: no feeding, no
             pipeline) against `model.fit` of
             tf.keras.applications.MobileNet(weights=None) (SGD, Nesterov);
  real path  train.build_graph on the real CIFAR-10 data (tf.data pipeline
             and augmentation included), running exactly the fetches of
             train.py's loop in one tower (--towers 1), so the images/s of
             such a run's progress bar is the one measured here;
  inference  our graph with is_training=False against `model.predict`, at
             --batch_size, plus the latency of one image;
  matmul     a float32 matmul in a graph-mode session: the machine's attainable
             GFLOP/s, measured in the same run, against which our training
             FLOP rate is quoted as a utilisation.

Each measurement is repeated --repeats times, interleaved (ours, Keras, ours,
Keras, ...) so that machine noise hits both sides alike; medians are quoted.
A table is printed, then the last line is one JSON object with the medians,
ratios, per-repetition values, flags, versions and CPU count.

Keras's MobileNet only has the stride-2 (ImageNet) stem; with --stem cifar
its figures are those of the ImageNet-stem network and are labelled so.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf

import data_utils
import mobilenet
import train

v1 = tf.compat.v1

# Beyond this, Keras gets one batch repeated through tf.data instead of a
# NumPy array of --steps batches (224x224 at batch 128 would be 1.5 GB a side).
_KERAS_NUMPY_LIMIT_BYTES = 1 << 30
# progress (in epochs) at which our learning rate is taken: half-way through the warm-up.
_PROGRESS = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--width', type=float, default=1.0,
                        help='width multiplier, for ours and as Keras alpha (default: %(default)s)')
    parser.add_argument('--image_size', type=int, default=32,
                        help='input height and width, e.g. 32 or 224 (default: %(default)s)')
    parser.add_argument('--stem', choices=sorted(mobilenet.STEMS), default='imagenet',
                        help="first conv's stride: 'imagenet' 2 (the only one Keras has), "
                             "'cifar' 1 (train.py's default) (default: %(default)s)")
    parser.add_argument('--batch_size', type=int, default=128,
                        help='batch size for training and inference (default: %(default)s)')
    parser.add_argument('--steps', type=int, default=20,
                        help='timed steps (batches) per repetition and measurement (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed steps before the first repetition (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='repetitions, interleaved ours/Keras; medians quoted (default: %(default)s)')
    parser.add_argument('--latency_runs', type=int, default=30,
                        help='batch-1 calls per repetition; their median is the latency (default: %(default)s)')
    parser.add_argument('--num_classes', type=int, default=10,
                        help='classes of the synthetic benchmarks; the real path is CIFAR-10 '
                             '(default: %(default)s)')
    parser.add_argument('--data_dir', default='cifar',
                        help='CIFAR-10 python files for the real train.py path; skipped with a note '
                             'if absent, never downloaded (default: %(default)s)')
    parser.add_argument('--skip_keras', action='store_true',
                        help='measure ours only (no Keras model is built)')
    parser.add_argument('--matmul_size', type=int, default=2048,
                        help='n of the n x n float32 matmul that measures peak GFLOP/s (default: %(default)s)')
    parser.add_argument('--matmul_iters', type=int, default=10,
                        help='matmuls per repetition (default: %(default)s)')
    parser.add_argument('--intra_op_threads', type=int, default=0,
                        help='intra-op threads of every session and of Keras; 0: TensorFlow decides, '
                             "as train.py (default: %(default)s)")
    parser.add_argument('--inter_op_threads', type=int, default=0,
                        help='inter-op threads, likewise (default: %(default)s)')
    parser.add_argument('--xla', choices=('off', 'jit_scope', 'global'), default='off',
                        help="XLA on our synthetic training step only: 'jit_scope' marks its ops with "
                             "tf.xla.experimental.jit_scope, 'global' sets the session's "
                             'global_jit_level ON_1 with TF_XLA_FLAGS=--tf_xla_cpu_global_jit '
                             '(default: %(default)s)')
    parser.add_argument('--output', default='',
                        help='also write the JSON summary to this path')
    args = parser.parse_args(argv)
    for name in ('width', 'image_size', 'batch_size', 'steps', 'repeats', 'latency_runs',
                 'num_classes', 'matmul_size', 'matmul_iters'):
        if not getattr(args, name) > 0:
            parser.error('--%s must be greater than 0, got %r' % (name, getattr(args, name)))
    for name in ('warmup', 'intra_op_threads', 'inter_op_threads'):
        if getattr(args, name) < 0:
            parser.error('--%s must be 0 or more, got %r' % (name, getattr(args, name)))
    try:
        train.check_config(model_config(args))
    except train.UsageError as e:
        parser.error(str(e))
    if args.output:
        # Found now, not after minutes of measuring.
        if os.path.isdir(args.output):
            parser.error('--output %s: is a folder; name a file such as %s'
                         % (args.output, os.path.join(args.output, 'benchmark.json')))
        folder = os.path.dirname(os.path.abspath(args.output))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            parser.error('--output %s: cannot create its folder (%s)'
                         % (args.output, e.strerror or e))
        if not os.access(folder, os.W_OK):
            parser.error('--output %s: folder %s is not writable' % (args.output, folder))
    return args


def model_config(args):
    """train.py's resolved configuration (default preset) with the benchmark's flags."""
    return train.parse_config(['--width', repr(args.width), '--image_size', str(args.image_size),
                               '--stem', args.stem, '--batch_size', str(args.batch_size),
                               '--data_dir', args.data_dir])


def session_config(args, xla=False):
    config = v1.ConfigProto(intra_op_parallelism_threads=args.intra_op_threads,
                            inter_op_parallelism_threads=args.inter_op_threads)
    if xla:
        config.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    return config


# --------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------

def logits_macs(cfg, num_classes):
    """Multiply-adds of the logits layer, counted from the graph train.build_model builds."""
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, [1, cfg['image_size'], cfg['image_size'], 3])
        train.build_model(images, cfg, num_classes, is_training=False)
    macs = 0
    for op in graph.get_operations():
        if op.type == 'Conv2D' and op.name.startswith('MobilenetV1/Logits/'):
            out_h, out_w = op.outputs[0].shape.as_list()[1:3]
            macs += op.inputs[1].shape.num_elements() * out_h * out_w
    return macs


def training_flops(cfg, num_classes):
    """FLOPs of one training image: 3 (forward + 2x backward) x 2 (per multiply-add) x MACs."""
    base = sum(macs for _, _, macs in mobilenet.layer_table(
        cfg['width'], cfg['image_size'], mobilenet.STEMS[cfg['stem']], cfg['min_depth']))
    head = logits_macs(cfg, num_classes)
    forward = 2 * (base + head)
    return dict(base_macs=base, logits_macs=head, forward_flops=forward,
                train_flops_per_image=3 * forward,
                formula='3 x 2 x (base MACs from mobilenet.layer_table + logits MACs) = '
                        '3 x 2 x (%d + %d) = %d FLOPs per training image; batch norm, ReLU6, '
                        'pooling, input normalisation and the optimizer update are not counted'
                        % (base, head, 3 * forward))


# --------------------------------------------------------------------------
# Ours
# --------------------------------------------------------------------------

def _synthetic_batch(batch_size, image_size, num_classes, seed):
    """A fixed random batch in non-trainable variables: raw 0..255 pixels and int32 labels."""
    images = v1.Variable(tf.random.uniform([batch_size, image_size, image_size, 3], 0.0, 255.0,
                                           seed=seed), trainable=False, name='synthetic_images')
    labels = v1.Variable(tf.random.uniform([batch_size], 0, num_classes, tf.int32, seed=seed),
                         trainable=False, name='synthetic_labels')
    return images, labels


def _timed_runs(sess, fetches, steps):
    start = time.perf_counter()
    for _ in range(steps):
        sess.run(fetches)
    return time.perf_counter() - start


class OursTrain:
    """Our training step on a fixed random batch: the graph train.build_graph builds, minus input."""

    def __init__(self, args, cfg, xla='off'):
        self.batch = args.batch_size
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(cfg['seed'])
            images, labels = _synthetic_batch(args.batch_size, args.image_size, args.num_classes,
                                              seed=1)
            global_step = v1.train.get_or_create_global_step()
            with (tf.xla.experimental.jit_scope() if xla == 'jit_scope'
                  else contextlib.nullcontext()):
                self.lr = train.learning_rate(cfg, tf.constant(_PROGRESS))
                _, _, self.train_op, _ = train.training_step(cfg, images, labels, args.num_classes,
                                                             global_step, self.lr)
            init = v1.global_variables_initializer()
        graph.finalize()
        self.sess = v1.Session(graph=graph, config=session_config(args, xla=xla == 'global'))
        self.sess.run(init)
        self.lr_value = float(self.sess.run(self.lr))

    def warm_up(self, steps):
        _timed_runs(self.sess, self.train_op, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.train_op, steps)


class OursRealPath:
    """train.build_graph on real CIFAR-10: input pipeline, augmentation and the loop's fetches."""

    def __init__(self, args, cfg, data):
        self.batch = cfg['batch_size']
        steps_per_epoch = train.steps_in_epoch(cfg, len(data['train_labels']))
        graph = tf.Graph()
        with graph.as_default():
            g = train.build_graph(cfg, data, steps_per_epoch)
        graph.finalize()
        self.sess = v1.Session(graph=graph, config=session_config(args))
        self.sess.run(g.init)
        self.sess.run(g.train_init, g.train_feed(0, 0))
        # What train.train_loop runs every step.
        self.fetches = [g.train_op, g.loss, g.accuracy, g.lr]

    def warm_up(self, steps):
        _timed_runs(self.sess, self.fetches, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.fetches, steps)


class OursInference:
    """Our inference graph (is_training=False, softmax) at --batch_size and at batch 1."""

    def __init__(self, args, cfg):
        self.batch = args.batch_size
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(cfg['seed'])
            images, _ = _synthetic_batch(args.batch_size, args.image_size, args.num_classes, seed=2)
            single, _ = _synthetic_batch(1, args.image_size, args.num_classes, seed=3)
            self.probs = tf.nn.softmax(train.build_model(images, cfg, args.num_classes,
                                                         is_training=False))
            self.probs_1 = tf.nn.softmax(train.build_model(single, cfg, args.num_classes,
                                                           is_training=False, reuse=True))
            init = v1.global_variables_initializer()
        graph.finalize()
        self.sess = v1.Session(graph=graph, config=session_config(args))
        self.sess.run(init)

    def warm_up(self, steps):
        _timed_runs(self.sess, self.probs, max(steps, 1))
        _timed_runs(self.sess, self.probs_1, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.probs, steps)

    def latency_ms(self, runs):
        return 1000 * statistics.median(_timed_runs(self.sess, self.probs_1, 1) for _ in range(runs))


class Matmul:
    """n x n float32 matmul in a graph-mode session: attainable GFLOP/s in this run."""

    def __init__(self, args):
        self.n = args.matmul_size
        graph = tf.Graph()
        with graph.as_default():
            a = v1.Variable(tf.random.normal([self.n, self.n], seed=4), name='a')
            b = v1.Variable(tf.random.normal([self.n, self.n], seed=5), name='b')
            # Run as a target: computed, not copied back to Python.
            self.op = tf.matmul(a, b).op
            init = v1.global_variables_initializer()
        graph.finalize()
        self.sess = v1.Session(graph=graph, config=session_config(args))
        self.sess.run(init)

    def warm_up(self, iters):
        _timed_runs(self.sess, self.op, max(iters, 1))

    def gflops(self, iters):
        return 2 * self.n ** 3 * iters / _timed_runs(self.sess, self.op, iters) / 1e9


# --------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------

class KerasMobileNet:
    """tf.keras.applications.MobileNet(weights=None): model.fit, model.predict, batch-1 calls.

    Fit and predict are timed from the start of their first batch to the end of
    their last (a callback), so fit's per-call set-up is not charged to Keras.
    Inputs are already scaled to [-1, 1] (Keras's model has no preprocessing
    layer; ours normalises in the graph). Keras's MobileNet has no weight decay.
    """

    def __init__(self, args, lr):
        self.batch, self.steps = args.batch_size, args.steps
        size = args.image_size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            self.model = tf.keras.applications.MobileNet(
                input_shape=(size, size, 3), alpha=args.width, include_top=True, weights=None,
                classes=args.num_classes)
        self.warnings = sorted({' '.join(str(w.message).split()) for w in caught})
        self.model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9,
                                                             nesterov=True),
                           loss='sparse_categorical_crossentropy')
        rng = np.random.RandomState(0)
        count = args.batch_size * args.steps
        per_image = size * size * 3 * 4
        one = rng.uniform(-1, 1, (args.batch_size, size, size, 3)).astype(np.float32)
        one_labels = rng.randint(0, args.num_classes, args.batch_size).astype(np.int32)
        if count * per_image <= _KERAS_NUMPY_LIMIT_BYTES:
            self.inputs = 'NumPy arrays of --steps batches'
            self.x = rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32)
            self.y = rng.randint(0, args.num_classes, count).astype(np.int32)
            self.fit_kwargs = dict(x=self.x, y=self.y, batch_size=args.batch_size, shuffle=False)
            self.predict_kwargs = dict(x=self.x, batch_size=args.batch_size)
        else:
            self.inputs = 'one NumPy batch repeated through tf.data (NumPy would exceed 1 GiB)'
            dataset = tf.data.Dataset.from_tensors((one, one_labels)).repeat()
            self.fit_kwargs = dict(x=dataset, steps_per_epoch=args.steps)
            self.predict_kwargs = dict(x=dataset.map(lambda x, y: x), steps=args.steps)
        self.single = one[:1]
        self.timer = _BatchTimer()

    def jit_compile(self):
        return getattr(self.model, 'jit_compile', None)

    def warm_up(self, steps):
        kwargs = dict(self.fit_kwargs)
        if 'batch_size' in kwargs:
            kwargs.update(x=self.x[:max(steps, 1) * self.batch], y=self.y[:max(steps, 1) * self.batch])
        else:
            kwargs.update(steps_per_epoch=max(steps, 1))
        self.model.fit(epochs=1, verbose=0, **kwargs)
        self.model.predict(verbose=0, **self.predict_kwargs)
        for _ in range(3):
            self.model.predict_on_batch(self.single)
            self.model(self.single, training=False)

    def fit_images_per_sec(self):
        """(images/s first batch to last, images/s of the whole fit call)."""
        start = time.perf_counter()
        self.model.fit(epochs=1, verbose=0, callbacks=[self.timer], **self.fit_kwargs)
        call = time.perf_counter() - start
        return self.steps * self.batch / self.timer.seconds(), self.steps * self.batch / call

    def predict_images_per_sec(self):
        """(images/s first batch to last, images/s of the whole predict call)."""
        start = time.perf_counter()
        self.model.predict(verbose=0, callbacks=[self.timer], **self.predict_kwargs)
        call = time.perf_counter() - start
        return self.steps * self.batch / self.timer.seconds(), self.steps * self.batch / call

    def latency_ms(self, runs):
        """(predict_on_batch, model(x, training=False)) medians for one image, in ms."""
        def median_ms(call):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                np.asarray(call())
                times.append(time.perf_counter() - start)
            return 1000 * statistics.median(times)
        return (median_ms(lambda: self.model.predict_on_batch(self.single)),
                median_ms(lambda: self.model(self.single, training=False)))


class _BatchTimer(tf.keras.callbacks.Callback):
    """Seconds from the start of the first batch to the end of the last, of fit or predict."""

    def __init__(self):
        super().__init__()
        self.start = self.end = None

    def _begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def _end(self, batch, logs=None):
        self.end = time.perf_counter()

    on_train_batch_begin = on_predict_batch_begin = _begin
    on_train_batch_end = on_predict_batch_end = _end

    def seconds(self):
        return self.end - self.start


# --------------------------------------------------------------------------
# Orchestration and report
# --------------------------------------------------------------------------

def _apply_keras_threads(args, notes):
    if not (args.intra_op_threads or args.inter_op_threads):
        return
    try:
        if args.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        if args.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    except RuntimeError as e:  # the eager context already exists (e.g. called twice in-process)
        notes.append('thread settings not applied to Keras: %s' % e)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def run(args, log=print):
    """All measurements; returns the summary dict (also what the JSON line holds)."""
    notes = []
    if args.xla == 'global':
        os.environ['TF_XLA_FLAGS'] = (os.environ.get('TF_XLA_FLAGS', '') +
                                      ' --tf_xla_cpu_global_jit').strip()
    _apply_keras_threads(args, notes)
    cfg = model_config(args)
    flops = training_flops(cfg, args.num_classes)

    log('Building: our training, inference and matmul graphs...', flush=True)
    ours_train = OursTrain(args, cfg, xla=args.xla)
    ours_infer = OursInference(args, cfg)
    matmul = Matmul(args)

    real = None
    missing = data_utils.missing_files(args.data_dir)
    if missing:
        notes.append('real train.py path skipped: %s lacks %s (benchmark.py never downloads; run '
                     'train.py once or pass --data_dir)' % (args.data_dir, ', '.join(missing)))
    else:
        log('Loading CIFAR-10 from %s for the train.py path...' % args.data_dir, flush=True)
        real = OursRealPath(args, cfg, train.load_data(cfg))
    if args.num_classes != 10 and real is not None:
        notes.append('the real train.py path trains CIFAR-10 (10 classes), not --num_classes %d'
                     % args.num_classes)

    keras = None
    if args.skip_keras:
        notes.append('Keras skipped (--skip_keras)')
    else:
        log('Building Keras MobileNet...', flush=True)
        try:
            keras = KerasMobileNet(args, ours_train.lr_value)
        except ValueError as e:
            notes.append('Keras skipped: %s' % ' '.join(str(e).split()))
    if keras is not None:
        notes.extend('Keras warning: %s' % w for w in keras.warnings)
        if args.stem == 'cifar':
            notes.append('Keras MobileNet has no stride-1 stem: its figures are the ImageNet-stem '
                         '(stride-2) network at the same width, size and batch, about 1/4 of our '
                         "cifar stem's multiply-adds; the ratios are not like for like")

    log('Warming up (%d steps each)...' % args.warmup, flush=True)
    ours_train.warm_up(args.warmup)
    ours_infer.warm_up(args.warmup)
    matmul.warm_up(2)
    if real is not None:
        real.warm_up(args.warmup)
    if keras is not None:
        keras.warm_up(args.warmup)

    raw = {k: [] for k in ('matmul_gflops', 'train_images_per_sec', 'real_path_images_per_sec',
                           'keras_fit_images_per_sec', 'infer_images_per_sec',
                           'keras_predict_images_per_sec', 'latency_ms', 'keras_latency_ms',
                           'keras_call_latency_ms', 'keras_fit_call_images_per_sec',
                           'keras_predict_call_images_per_sec')}
    for rep in range(args.repeats):
        raw['matmul_gflops'].append(matmul.gflops(args.matmul_iters))
        raw['train_images_per_sec'].append(ours_train.images_per_sec(args.steps))
        if real is not None:
            raw['real_path_images_per_sec'].append(real.images_per_sec(args.steps))
        if keras is not None:
            in_loop, whole = keras.fit_images_per_sec()
            raw['keras_fit_images_per_sec'].append(in_loop)
            raw['keras_fit_call_images_per_sec'].append(whole)
        raw['infer_images_per_sec'].append(ours_infer.images_per_sec(args.steps))
        if keras is not None:
            in_loop, whole = keras.predict_images_per_sec()
            raw['keras_predict_images_per_sec'].append(in_loop)
            raw['keras_predict_call_images_per_sec'].append(whole)
        raw['latency_ms'].append(ours_infer.latency_ms(args.latency_runs))
        if keras is not None:
            on_batch, call = keras.latency_ms(args.latency_runs)
            raw['keras_latency_ms'].append(on_batch)
            raw['keras_call_latency_ms'].append(call)
        log('repetition %d/%d: train %.0f img/s%s%s, inference %.0f img/s%s, batch-1 %.2f ms, '
            'matmul %.0f GFLOP/s' % (
                rep + 1, args.repeats, raw['train_images_per_sec'][-1],
                ', real path %.0f' % raw['real_path_images_per_sec'][-1] if real else '',
                ', Keras fit %.0f' % raw['keras_fit_images_per_sec'][-1] if keras else '',
                raw['infer_images_per_sec'][-1],
                ', Keras predict %.0f' % raw['keras_predict_images_per_sec'][-1] if keras else '',
                raw['latency_ms'][-1], raw['matmul_gflops'][-1]), flush=True)

    med = {k: _median(v) for k, v in raw.items()}
    med['utilisation'] = med['train_images_per_sec'] * flops['train_flops_per_image'] / (
        med['matmul_gflops'] * 1e9)
    med['train_gflops'] = med['train_images_per_sec'] * flops['train_flops_per_image'] / 1e9
    ratios = dict(
        train_vs_keras_fit=_ratio(med['train_images_per_sec'], med['keras_fit_images_per_sec']),
        infer_vs_keras_predict=_ratio(med['infer_images_per_sec'],
                                      med['keras_predict_images_per_sec']),
        keras_latency_vs_ours=_ratio(med['keras_latency_ms'], med['latency_ms']),
        real_path_vs_synthetic=_ratio(med['real_path_images_per_sec'],
                                      med['train_images_per_sec']))
    for key, value in list(med.items()) + list(ratios.items()):
        if value is not None:
            (med if key in med else ratios)[key] = round(value, 4)
    return dict(
        flags=vars(args), tf_version=tf.__version__, keras_version=_keras_version(),
        cpu_count=os.cpu_count(), keras_stem='imagenet' if keras is not None else None,
        keras_like_for_like=keras is not None and args.stem == 'imagenet',
        keras_jit_compile=keras.jit_compile() if keras is not None else None,
        keras_inputs=keras.inputs if keras is not None else None,
        keras_latency_method='predict_on_batch' if keras is not None else None,
        learning_rate=ours_train.lr_value, flops=flops, medians=med, ratios=ratios,
        raw={k: [round(x, 4) for x in v] for k, v in raw.items()}, notes=notes)


def _keras_version():
    try:
        return tf.keras.__version__
    except AttributeError:
        return None


def format_report(summary):
    args = argparse.Namespace(**summary['flags'])
    med, ratios = summary['medians'], summary['ratios']
    keras_label = 'Keras' if summary['keras_like_for_like'] or summary['keras_stem'] is None \
        else 'Keras (ImageNet stem)'

    def num(value, fmt='%.1f'):
        return fmt % value if value is not None else '-'

    def ratio(value):
        return '%.2fx' % value if value is not None else '-'

    lines = [
        '',
        'MobileNetV1: width %s, %dx%d, %s stem, batch %d, %d classes' % (
            args.width, args.image_size, args.image_size, args.stem, args.batch_size,
            args.num_classes),
        'TensorFlow %s, Keras %s, %d CPUs; median of %d repetitions x %d timed steps (%d warm-up), '
        'interleaved ours/Keras' % (summary['tf_version'], summary['keras_version'],
                                    summary['cpu_count'], args.repeats, args.steps, args.warmup),
        'threads intra %d inter %d (0: TensorFlow default); XLA on our train step: %s' % (
            args.intra_op_threads, args.inter_op_threads, args.xla),
        '',
        '%-38s %12s %22s %10s' % ('', 'ours', keras_label, 'ratio'),
        '%-38s %12s %22s %10s' % ('training, synthetic batch (img/s)', num(med['train_images_per_sec']),
                                  num(med['keras_fit_images_per_sec']),
                                  ratio(ratios['train_vs_keras_fit'])),
        '%-38s %12s %22s %10s' % ('training, train.py path (img/s)',
                                  num(med['real_path_images_per_sec']), '',
                                  ratio(ratios['real_path_vs_synthetic'])),
        '%-38s %12s %22s %10s' % ('inference, batch %d (img/s)' % args.batch_size,
                                  num(med['infer_images_per_sec']),
                                  num(med['keras_predict_images_per_sec']),
                                  ratio(ratios['infer_vs_keras_predict'])),
        '%-38s %12s %22s %10s' % ('latency, batch 1 (ms)', num(med['latency_ms'], '%.2f'),
                                  num(med['keras_latency_ms'], '%.2f'),
                                  ratio(ratios['keras_latency_vs_ours'])),
        '%-38s %12s' % ('matmul %dx%d float32 (GFLOP/s)' % (args.matmul_size, args.matmul_size),
                        num(med['matmul_gflops'])),
        '%-38s %12s' % ('our training FLOP rate (GFLOP/s)', num(med['train_gflops'])),
        '%-38s %12s' % ('utilisation of the matmul peak', num(100 * med['utilisation'], '%.1f%%')),
        '',
        'ratio column: training and inference ours/Keras images/s; latency Keras ms / ours ms;',
        '  train.py path / synthetic for the train.py row (1.00x: the pipeline costs nothing).',
        'train.py path: train.build_graph on CIFAR-10 with augmentation, fetching '
        '[train_op, loss, accuracy, lr] as train.py does.',
        'Keras: model.fit / model.predict timed from the first batch to the last (set-up '
        'excluded), inputs %s;' % (summary['keras_inputs'] or '-'),
        '  whole fit / predict calls, set-up included: %s / %s img/s.' % (
            num(med['keras_fit_call_images_per_sec']), num(med['keras_predict_call_images_per_sec'])),
        '  batch-1 latency by predict_on_batch (model(x, training=False) median %s ms); '
        'jit_compile=%s.' % (num(med['keras_call_latency_ms'], '%.2f'), summary['keras_jit_compile']),
        'FLOPs: ' + summary['flops']['formula'] + '.',
        'utilisation = our training img/s x FLOPs per image / matmul GFLOP/s.',
    ]
    lines += ['note: ' + n for n in summary['notes']]
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    summary = run(args)
    print(format_report(summary), flush=True)
    line = json.dumps(summary, sort_keys=True)
    if args.output:
        try:
            with open(args.output, 'w') as f:
                f.write(line + '\n')
        except OSError as e:
            print('benchmark.py: error: %s: cannot write (%s)' % (args.output, e.strerror or e),
                  file=sys.stderr)
            return 2
    print(line, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
