"""The measurements behind benchmark.py: our training and inference graphs, a matmul for the
machine's peak and a profile of one training step, beside the peers (peers.py).

Imported once benchmark.py has chosen the CPU kernels (cpu_kernels.settle), since
TensorFlow picks them when it is imported.
"""
import collections
import contextlib
import os
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf

from benchmarking import peers
import data_utils
from datasets import factory
from datasets import sources
import mobilenet
from pipelines import streamed
from preflight import cpu_kernels
from tasks import classifier
from training import plan as run_plan
from training import model
from training import optimization
from training import train_graph

v1 = tf.compat.v1


# progress (in epochs) at which our learning rate is taken: half-way through the warm-up.
_PROGRESS = 1.0


def session_config(args, cfg=None, xla=False):
    """train.py's session settings for cfg (the towers' thread shares), else TensorFlow's;
    then --*_op_threads where given."""
    config = optimization.session_config(cfg) if cfg else v1.ConfigProto()
    if args.intra_op_threads:
        config.intra_op_parallelism_threads = args.intra_op_threads
    if args.inter_op_threads:
        config.inter_op_parallelism_threads = args.inter_op_threads
    if xla:
        config.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    return config


def logits_macs(cfg, num_classes):
    """Multiply-adds of the logits layer, counted from the graph training/model.py's build_model builds."""
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, [1, cfg['image_size'], cfg['image_size'], 3])
        model.build_model(images, cfg, num_classes, is_training=False)
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


def _synthetic_batch(batch_size, image_size, num_classes, seed):
    """A fixed random batch in non-trainable variables: raw 0..255 pixels and int32 labels."""
    images = v1.Variable(tf.random.uniform([batch_size, image_size, image_size, 3], 0.0, 255.0,
                                           seed=seed), trainable=False, name='synthetic_images')
    labels = v1.Variable(tf.random.uniform([batch_size], 0, num_classes, tf.int32, seed=seed),
                         trainable=False, name='synthetic_labels')
    return images, labels


def _session(graph, config, init, feed=None):
    """A session on `graph`, finalized (nothing may grow it while it is timed), initialised."""
    graph.finalize()
    sess = v1.Session(graph=graph, config=config)
    sess.run(init, feed)
    return sess


def _timed_runs(sess, fetches, steps):
    start = time.perf_counter()
    for _ in range(steps):
        sess.run(fetches)
    return time.perf_counter() - start


class OursTrain:
    """Our training step on a fixed random batch: train.py's graph, minus the input."""

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
                self.lr = optimization.learning_rate(cfg, tf.constant(_PROGRESS))
                _, _, self.train_op, _ = classifier.training_step(
                    cfg, images, labels, args.num_classes, global_step, self.lr)
            init = v1.global_variables_initializer()
        self.sess = _session(graph, session_config(args, cfg, xla=xla == 'global'), init)
        self.lr_value = float(self.sess.run(self.lr))

    def warm_up(self, steps):
        _timed_runs(self.sess, self.train_op, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.train_op, steps)

    def profile(self, steps, top=5):
        """The `top` ops of a training step by time, as [(ms, kernel, op name)], and the summed
        time of all ops (ms): means over `steps` traced steps. The kernel is the op type that
        ran, after oneDNN's rewrites (e.g. _MklNativeDepthwiseConv2dNativeBackpropFilter)."""
        totals, kernels = collections.Counter(), {}
        for _ in range(steps):
            metadata = v1.RunMetadata()
            self.sess.run(self.train_op, options=v1.RunOptions(
                trace_level=v1.RunOptions.FULL_TRACE), run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    totals[node.node_name] += node.op_end_rel_micros - node.op_start_rel_micros
                    # The label reads 'name = Kernel(inputs)'.
                    label = node.timeline_label.partition(' = ')[2]
                    kernels[node.node_name] = label.partition('(')[0] or node.node_name
        ops = [(us / 1000 / steps, kernels[name], name) for name, us in totals.most_common(top)]
        return ops, sum(totals.values()) / 1000 / steps


class OursRealPath:
    """train.py's graph on real CIFAR-10: input pipeline, augmentation and the loop's fetches."""

    def __init__(self, args, cfg):
        self.batch = cfg['batch_size']
        plan, data = run_plan.resolve(cfg, classifier)
        graph = tf.Graph()
        with graph.as_default():
            g = train_graph.build_graph(plan, data, classifier)
        self.sess = _session(graph, session_config(args, cfg), g.init)
        self.sess.run(g.train_init, g.train_feed(0, 0))
        # What training/trainer.py's loop runs every step.
        self.fetches = [g.train_op, g.loss, g.train_metrics, g.lr]

    def warm_up(self, steps):
        _timed_runs(self.sess, self.fetches, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.fetches, steps)


class OursPipeline:
    """pipelines/streamed.py's training input alone on a folder dataset: reading, decoding, slim's
    inception crop and the flip at --image_size, batched, as train.py streams own images."""

    MIN_BATCHES = 100

    def __init__(self, args, cfg):
        splits = factory.load('folder', args.pipeline_dir)
        self.batch = args.batch_size
        graph = tf.Graph()
        with graph.as_default():
            self.images, _, init, feed = streamed.input_pipeline(
                splits['train'], len(splits['label_names']), args.batch_size, True,
                args.image_size, seed=cfg['seed'])
        self.sess = _session(graph, session_config(args, cfg), init, feed())

    def warm_up(self, steps):
        _timed_runs(self.sess, self.images, max(steps, 1))

    def images_per_sec(self, steps):
        # Many more batches than a training measurement's: the two batches prefetched while
        # the other measurements ran would otherwise make a short window look fast.
        steps = max(steps, self.MIN_BATCHES)
        return steps * self.batch / _timed_runs(self.sess, self.images, steps)


class OursInference:
    """Our inference graph (is_training=False, softmax) at --batch_size and at batch 1."""

    def __init__(self, args, cfg):
        self.batch = args.batch_size
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(cfg['seed'])
            images, _ = _synthetic_batch(args.batch_size, args.image_size, args.num_classes, seed=2)
            single, _ = _synthetic_batch(1, args.image_size, args.num_classes, seed=3)
            self.probs = tf.nn.softmax(model.build_model(images, cfg, args.num_classes,
                                                         is_training=False))
            self.probs_1 = tf.nn.softmax(model.build_model(single, cfg, args.num_classes,
                                                           is_training=False, reuse=True))
            init = v1.global_variables_initializer()
        self.sess = _session(graph, session_config(args), init)

    def warm_up(self, steps):
        _timed_runs(self.sess, self.probs, max(steps, 1))
        _timed_runs(self.sess, self.probs_1, max(steps, 1))

    def images_per_sec(self, steps):
        return steps * self.batch / _timed_runs(self.sess, self.probs, steps)

    def latency_ms(self, runs):
        return 1000 * statistics.median(_timed_runs(self.sess, self.probs_1, 1) for _ in range(runs))


class Matmul:
    """n x n float32 matmuls in a graph-mode session: attainable GFLOP/s in this run.

    TensorFlow's thread pools belong to the process, set by its first session: with towers,
    one thread per op. So `parallel` matmuls (one per tower) run side by side, as the towers
    do, and the peak is that of the whole machine under the same settings.
    """

    def __init__(self, args, parallel=1):
        self.n, self.parallel = args.matmul_size, parallel
        graph = tf.Graph()
        with graph.as_default():
            products = []
            for i in range(parallel):
                a = v1.Variable(tf.random.normal([self.n, self.n], seed=4 + 2 * i), name='a')
                b = v1.Variable(tf.random.normal([self.n, self.n], seed=5 + 2 * i), name='b')
                products.append(tf.matmul(a, b))
            # Run as targets: computed, not copied back to Python (under a tf.group, grappler
            # would prune them).
            self.op = [product.op for product in products]
            init = v1.global_variables_initializer()
        self.sess = _session(graph, session_config(args), init)

    def warm_up(self, iters):
        _timed_runs(self.sess, self.op, max(iters, 1))

    def gflops(self, iters):
        return self.parallel * 2 * self.n ** 3 * iters / _timed_runs(self.sess, self.op, iters) / 1e9


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None

# What each repetition's progress line shows, of the figures measured.
_PROGRESS_FIGURES = (
    ('train', 'train_images_per_sec', ' img/s'), ('conv2d 1x1', 'train_conv2d_images_per_sec', ''),
    ('real path', 'real_path_images_per_sec', ''), ('pipeline', 'pipeline_images_per_sec', ''),
    ('Keras fit', 'keras_fit_images_per_sec', ''),
    ('PyTorch', 'torch_train_images_per_sec', ''), ('inference', 'infer_images_per_sec', ' img/s'),
    ('Keras predict', 'keras_predict_images_per_sec', ''), ('batch-1', 'latency_ms', ' ms'),
    ('matmul', 'matmul_gflops', ' GFLOP/s'))


def _keras(args, lr, notes, log):
    """Keras's MobileNet for the comparison, or None with a note saying why not."""
    if args.skip_keras:
        notes.append('Keras skipped (--skip_keras)')
        return None
    log('Building Keras MobileNet...', flush=True)
    try:
        keras = peers.KerasMobileNet(args, lr)
    except ValueError as e:
        notes.append('Keras skipped: %s' % ' '.join(str(e).split()))
        return None
    notes.extend('Keras warning: %s' % w for w in keras.warnings)
    if args.stem == 'cifar':
        notes.append('Keras MobileNet has no stride-1 stem: its figures are the ImageNet-stem '
                     '(stride-2) network at the same width, size and batch, about 1/4 of our '
                     "cifar stem's multiply-adds; the ratios are not like for like")
    return keras


def _torch(args, cfg, lr, notes, log):
    """PyTorch's training of the same network, or None with a note saying why not."""
    if args.skip_torch:
        notes.append('PyTorch skipped (--skip_torch)')
        return None
    module, why_not = peers.import_torch()
    if module is None:
        notes.append(why_not)
        return None
    log('Building the same network in PyTorch %s...' % module.__version__, flush=True)
    return peers.TorchMobileNet(module, cfg, args.num_classes, args.batch_size, lr)


def run(args, cfg, log=print):
    """All measurements for cfg (train.py's, its CPU kernels settled); the summary dict."""
    notes = []
    if args.xla == 'global':
        os.environ['TF_XLA_FLAGS'] = (os.environ.get('TF_XLA_FLAGS', '') +
                                      ' --tf_xla_cpu_global_jit').strip()
    # TensorFlow's thread pools are set once a process, by its first session: under towers,
    # one thread an op, which would slow inference and the peers. benchmark.py measures those
    # in a one-tower process of their own instead.
    one_tower = cfg['towers'] == 1
    if one_tower:
        peers.apply_keras_threads(args, notes)
    flops = training_flops(cfg, args.num_classes)

    log('Building: our training, inference and matmul graphs...', flush=True)
    ours_train = OursTrain(args, cfg, xla=args.xla)
    # The 1x1 convolutions as Conv2D, as before the matmul formulation: the same network.
    conv2d = None if cfg['pointwise'] == 'conv2d' else OursTrain(args, dict(cfg, pointwise='conv2d'),
                                                                  xla=args.xla)
    ours_infer = OursInference(args, cfg) if one_tower else None
    matmul = Matmul(args, parallel=cfg['towers'])
    if not one_tower:
        notes.append('--towers %d: every session of this process runs %d ops side by side on %d '
                     'thread(s) each, as train.py does; the matmul peak is %d matmuls at once'
                     % (cfg['towers'], cfg['towers'],
                        max(1, cpu_kernels.usable_cores() // cfg['towers']), cfg['towers']))

    real = None
    missing = None if args.skip_real_path else data_utils.missing_files(args.data_dir)
    if args.skip_real_path:
        notes.append('real train.py path skipped (--skip_real_path)')
    elif missing:
        notes.append('real train.py path skipped: %s lacks %s (benchmark.py never downloads; run '
                     'train.py once or pass --data_dir)' % (args.data_dir, ', '.join(missing)))
    else:
        log('Loading CIFAR-10 from %s for the train.py path...' % args.data_dir, flush=True)
        real = OursRealPath(args, cfg)
    if args.num_classes != 10 and real is not None:
        notes.append('the real train.py path trains CIFAR-10 (10 classes), not --num_classes %d'
                     % args.num_classes)

    pipeline = None
    if args.pipeline_dir:
        log('Building the input pipeline over %s...' % args.pipeline_dir, flush=True)
        pipeline = OursPipeline(args, cfg)
        if args.image_size == sources.CACHED_SIZE:
            notes.append('at --image_size 32 train.py decodes own images into memory once; the '
                         'pipeline row is the streamed one other sizes use')

    keras = _keras(args, ours_train.lr_value, notes, log) if one_tower else None
    torch = _torch(args, cfg, ours_train.lr_value, notes, log) if one_tower else None

    log('Warming up (%d steps each)...' % args.warmup, flush=True)
    ours_train.warm_up(args.warmup)
    if conv2d is not None:
        conv2d.warm_up(args.warmup)
    if ours_infer is not None:
        ours_infer.warm_up(args.warmup)
    matmul.warm_up(2)
    if real is not None:
        real.warm_up(args.warmup)
    if pipeline is not None:
        pipeline.warm_up(args.warmup)
    if keras is not None:
        keras.warm_up(args.warmup)
    if torch is not None:
        torch.warm_up(args.warmup)

    raw = {k: [] for k in ('matmul_gflops', 'train_images_per_sec', 'train_conv2d_images_per_sec',
                           'real_path_images_per_sec',
                           'keras_fit_images_per_sec', 'infer_images_per_sec',
                           'keras_predict_images_per_sec', 'latency_ms', 'keras_latency_ms',
                           'keras_call_latency_ms', 'keras_fit_call_images_per_sec',
                           'keras_predict_call_images_per_sec', 'torch_train_images_per_sec',
                           'pipeline_images_per_sec')}
    for rep in range(args.repeats):
        raw['matmul_gflops'].append(matmul.gflops(args.matmul_iters))
        raw['train_images_per_sec'].append(ours_train.images_per_sec(args.steps))
        if conv2d is not None:
            raw['train_conv2d_images_per_sec'].append(conv2d.images_per_sec(args.steps))
        if real is not None:
            raw['real_path_images_per_sec'].append(real.images_per_sec(args.steps))
        if pipeline is not None:
            raw['pipeline_images_per_sec'].append(pipeline.images_per_sec(args.steps))
        if keras is not None:
            in_loop, whole = keras.fit_images_per_sec()
            raw['keras_fit_images_per_sec'].append(in_loop)
            raw['keras_fit_call_images_per_sec'].append(whole)
        if torch is not None:
            raw['torch_train_images_per_sec'].append(torch.images_per_sec(args.steps))
        if ours_infer is not None:
            raw['infer_images_per_sec'].append(ours_infer.images_per_sec(args.steps))
            raw['latency_ms'].append(ours_infer.latency_ms(args.latency_runs))
        if keras is not None:
            for prefix, (in_loop, whole) in (
                    ('keras_predict', keras.predict_images_per_sec()),
                    ('keras', keras.latency_ms(args.latency_runs))):
                suffix = 'images_per_sec' if prefix == 'keras_predict' else 'latency_ms'
                raw['%s_%s' % (prefix, suffix)].append(in_loop)
                raw['%s_call_%s' % (prefix, suffix)].append(whole)
        log('repetition %d/%d: %s' % (rep + 1, args.repeats, ', '.join(
            '%s %.*f%s' % (label, 2 if unit == ' ms' else 0, raw[key][-1], unit)
            for label, key, unit in _PROGRESS_FIGURES if len(raw[key]) == rep + 1)), flush=True)

    med = {k: _median(v) for k, v in raw.items()}
    med['utilisation'] = med['train_images_per_sec'] * flops['train_flops_per_image'] / (
        med['matmul_gflops'] * 1e9)
    med['train_gflops'] = med['train_images_per_sec'] * flops['train_flops_per_image'] / 1e9
    # As before the choice: 1x1 convolutions as Conv2D in one tower, on the same kernels. With
    # towers, benchmark.py takes it from its one-tower process (merge_one_tower).
    raw['train_before_images_per_sec'] = [] if not one_tower else list(
        raw['train_conv2d_images_per_sec'] if conv2d else raw['train_images_per_sec'])
    med['train_before_images_per_sec'] = _median(raw['train_before_images_per_sec'])
    med = {k: round(v, 4) if v is not None else None for k, v in med.items()}
    profile = None
    if args.profile:
        log('Profiling %d training steps...' % args.profile, flush=True)
        ops, total_ms = ours_train.profile(args.profile)
        profile = dict(ops=[dict(ms=round(ms, 2), type=kind, name=name) for ms, kind, name in ops],
                       all_ops_ms=round(total_ms, 2), steps=args.profile)
    return dict(
        flags=vars(args), tf_version=tf.__version__, keras_version=_keras_version(),
        cpu=cfg['cpu'], cpu_flags=sorted(cpu_kernels.vector_flags(cpu_kernels.cpu_flags())),
        onednn=cfg['onednn'], onednn_in_process=cpu_kernels.onednn_enabled(),
        pointwise=cfg['pointwise'], towers=cfg['towers'], profile=profile,
        cpu_count=os.cpu_count(), keras_stem='imagenet' if keras is not None else None,
        keras_like_for_like=keras is not None and args.stem == 'imagenet',
        keras_jit_compile=keras.jit_compile() if keras is not None else None,
        keras_inputs=keras.inputs if keras is not None else None,
        keras_latency_method='predict_on_batch' if keras is not None else None,
        torch_version=torch.version() if torch is not None else None,
        learning_rate=ours_train.lr_value, flops=flops, medians=med, ratios=ratios(med),
        raw={k: [round(x, 4) for x in v] for k, v in raw.items()}, notes=notes)


def ratios(med):
    """The ratios of the report, from the medians."""
    values = dict(
        train_vs_keras_fit=_ratio(med['train_images_per_sec'], med['keras_fit_images_per_sec']),
        train_vs_torch=_ratio(med['train_images_per_sec'], med['torch_train_images_per_sec']),
        train_vs_before=_ratio(med['train_images_per_sec'], med['train_before_images_per_sec']),
        train_vs_conv2d=_ratio(med['train_images_per_sec'], med['train_conv2d_images_per_sec']),
        infer_vs_keras_predict=_ratio(med['infer_images_per_sec'],
                                      med['keras_predict_images_per_sec']),
        keras_latency_vs_ours=_ratio(med['keras_latency_ms'], med['latency_ms']),
        real_path_vs_synthetic=_ratio(med['real_path_images_per_sec'],
                                      med['train_images_per_sec']),
        pipeline_vs_train=_ratio(med['pipeline_images_per_sec'], med['train_images_per_sec']))
    return {k: round(v, 4) if v is not None else None for k, v in values.items()}

# What a run in towers takes from benchmark.py's one-tower process of the same flags.
_ONE_TOWER_FIGURES = ('keras_fit_images_per_sec', 'keras_fit_call_images_per_sec',
                      'torch_train_images_per_sec', 'infer_images_per_sec',
                      'keras_predict_images_per_sec', 'keras_predict_call_images_per_sec',
                      'latency_ms', 'keras_latency_ms', 'keras_call_latency_ms')

_ONE_TOWER_FACTS = ('keras_stem', 'keras_like_for_like', 'keras_jit_compile', 'keras_inputs',
                    'keras_latency_method', 'torch_version')


def merge_one_tower(summary, one):
    """`summary` (towers) with inference, the peers and the 'before' row from `one`, the summary
    of a one-tower process with --pointwise conv2d: TensorFlow's thread pools are per process."""
    med, raw = dict(summary['medians']), dict(summary['raw'])
    for key in _ONE_TOWER_FIGURES:
        med[key], raw[key] = one['medians'][key], one['raw'][key]
    med['train_before_images_per_sec'] = one['medians']['train_images_per_sec']
    raw['train_before_images_per_sec'] = one['raw']['train_images_per_sec']
    notes = summary['notes'] + ['one-tower process (inference, latency, peers, before): ' + n
                                for n in one['notes'] if not n.startswith('real train.py path')]
    return dict(summary, medians=med, raw=raw, ratios=ratios(med), notes=notes,
                **{key: one[key] for key in _ONE_TOWER_FACTS})


def _keras_version():
    try:
        return tf.keras.__version__
    except AttributeError:
        return None
