"""Training and inference speed of this repository's MobileNetV1 against Keras's and PyTorch's,
and of its detector against the machine's peak.

    python3 benchmark.py                      # width 1.0, 32x32, ImageNet stem, batch 128
    python3 benchmark.py --stem cifar         # the stride-1 stem train.py uses by default
    python3 benchmark.py --image_size 224 --batch_size 32 --steps 5
    python3 benchmark.py --skip_keras --output results/benchmark/ours.json
    python3 benchmark.py --task detect --width 0.75 --data_dir VOC/   # YOLOv3 at 416, batch 8

--task detect measures benchmarking/detector_speed.py's figures instead (training images/s at
416 against its FLOPs and the matmul peak, the input pipeline's share, the frozen detector's
latency at --latency_sizes); its docstring says how.

In one run, for the same width, input size, class count and batch:

  train      our training step (tasks/classifier.py's training_step: the model
             + softmax cross-entropy + L2 + UPDATE_OPS + the optimizer's minimize,
             graph mode, one fixed random batch held in a variable: no feeding,
             no pipeline) with the CPU kernels, 1x1 formulation and towers chosen
             for this machine (the first line printed says which), beside the
             same step with its 1x1 convolutions as Conv2D, and as before the
             choice (Conv2D, one tower); against `model.fit` of
             tf.keras.applications.MobileNet(weights=None) (SGD, Nesterov) and,
             where torch imports, PyTorch training the same network (peers.py);
  real path  train.py's graph (training/train_graph.py) on the real CIFAR-10
             data (tf.data pipeline and augmentation included), running exactly the fetches of
             train.py's loop in --towers towers, so the images/s of such a
             run's progress bar is the one measured here;
  inference  our graph with is_training=False against `model.predict`, at
             --batch_size, plus the latency of one image;
  matmul     a float32 matmul in a graph-mode session (one per tower, side by
             side): the machine's attainable GFLOP/s, measured in the same run,
             against which our training FLOP rate is quoted as a utilisation;
  profile    with --profile N, the five longest ops of N traced training steps.

Each measurement is repeated --repeats times, interleaved (ours, Keras, ours,
Keras, ...) so that machine noise hits both sides alike; medians are quoted.
TensorFlow sets its thread pools once a process: in towers (one thread an op),
inference, the peers and the one-tower "before" row are measured first, in a
second process of the same flags with one tower, which would otherwise be slowed.
A table is printed, then the last line is one JSON object with the medians,
ratios, per-repetition values, flags, versions and CPU count.

Keras's MobileNet only has the stride-2 (ImageNet) stem; with --stem cifar
its figures are those of the ImageNet-stem network and are labelled so.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from preflight import command_line
from preflight import errors
from preflight import cpu_kernels


# The whole-number flags of the measurements: (flag, default, whether it must be more than 0
# (else 0 or more), help).
COUNTS = (
    ('profile', 0, False, 'also trace this many training steps and print the five ops that '
                          'take the longest (0: no profile)'),
    ('steps', 20, True, 'timed steps (batches) per repetition and measurement'),
    ('warmup', 5, False, 'untimed steps before the first repetition'),
    ('repeats', 3, True, 'repetitions, interleaved ours/Keras; medians quoted'),
    ('latency_runs', 30, True, 'batch-1 calls per repetition; their median is the latency'),
    ('num_classes', 10, True, 'classes of the synthetic benchmarks; the real path is CIFAR-10'),
    ('matmul_size', 2048, True, 'n of the n x n float32 matmul that measures peak GFLOP/s'),
    ('matmul_iters', 10, True, 'matmuls per repetition'),
    ('intra_op_threads', 0, False, 'intra-op threads of every session and of Keras; 0: '
                                   'TensorFlow decides, as train.py'),
    ('inter_op_threads', 0, False, 'inter-op threads, likewise'),
)


def parse_args(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('--task', choices=('classify', 'detect'), default='classify',
                        help="'classify': MobileNetV1 against its peers; 'detect': the YOLOv3 "
                             'detector (default: %(default)s)')
    parser.add_argument('--width', type=float, default=1.0,
                        help='width multiplier, for ours and as Keras alpha (default: %(default)s)')
    parser.add_argument('--image_size', type=int, default=None,
                        help='input height and width, e.g. 32 or 224 (default: 32; 416 with '
                             '--task detect)')
    parser.add_argument('--head', choices=('yolov3', 'lite'), default='yolov3',
                        help="--task detect: the detector's head (default: %(default)s)")
    parser.add_argument('--latency_sizes', default='320,416',
                        help='--task detect: comma-separated input sizes of the frozen '
                             "detector's latency (default: %(default)s)")
    parser.add_argument('--stem', choices=('cifar', 'imagenet'), default='imagenet',
                        help="first conv's stride: 'imagenet' 2 (the only one Keras has), "
                             "'cifar' 1 (train.py's default) (default: %(default)s)")
    parser.add_argument('--batch_size', type=int, default=None,
                        help='batch size for training and inference (default: 128; 8 with '
                             '--task detect)')
    parser.add_argument('--towers', type=command_line.FLAG_TYPES['towers'], default='auto',
                        metavar='N|auto',
                        help="network copies splitting each training batch, as train.py's --towers: "
                             "'auto' chooses for this machine (default: %(default)s)")
    parser.add_argument('--onednn', choices=cpu_kernels.ONEDNN, default='auto',
                        help="CPU kernels, as train.py's --onednn: 'auto' chooses for this CPU "
                             '(default: %(default)s)')
    parser.add_argument('--pointwise', choices=cpu_kernels.POINTWISE, default='auto',
                        help="1x1 convolutions in training, as train.py's --pointwise; unless "
                             "'conv2d', the conv2d formulation is measured beside it "
                             '(default: %(default)s)')
    for name, default, _, text in COUNTS:
        parser.add_argument('--' + name, type=int, default=default,
                            help=text + ' (default: %(default)s)')
    parser.add_argument('--data_dir', default=None,
                        help='CIFAR-10 python files for the real train.py path (--task detect: a '
                             'VOC folder); skipped with a note if absent, never downloaded '
                             '(default: cifar; voc with --task detect)')
    parser.add_argument('--pipeline_dir', default='', metavar='DIR',
                        help='also measure the streamed input pipeline alone (decoding, inception '
                             "crop, flip at --image_size) on this folder dataset's training "
                             "images, against our training step: it should deliver 2x or more")
    parser.add_argument('--skip_keras', action='store_true',
                        help='no Keras model is built or measured')
    parser.add_argument('--skip_torch', action='store_true',
                        help='no PyTorch model is measured, even where torch imports')
    parser.add_argument('--skip_real_path', action='store_true',
                        help='no measurement of the train.py path on CIFAR-10')
    parser.add_argument('--xla', choices=('off', 'jit_scope', 'global'), default='off',
                        help="XLA on our synthetic training step only: 'jit_scope' marks its ops with "
                             "tf.xla.experimental.jit_scope, 'global' sets the session's "
                             'global_jit_level ON_1 with TF_XLA_FLAGS=--tf_xla_cpu_global_jit '
                             '(default: %(default)s)')
    parser.add_argument('--output', default='',
                        help='also write the JSON summary to this path')
    args = parser.parse_args(argv)
    detect = args.task == 'detect'
    for key, classify_default, detect_default in (('image_size', 32, 416), ('batch_size', 128, 8),
                                                   ('data_dir', 'cifar', 'voc')):
        if getattr(args, key) is None:
            setattr(args, key, detect_default if detect else classify_default)
    if detect:
        try:
            sizes = [int(s) for s in args.latency_sizes.split(',')]
            if not sizes or min(sizes) < 32 or any(s % 32 for s in sizes):
                raise ValueError
        except ValueError:
            parser.error('--latency_sizes must be sizes that are multiples of 32, e.g. 320,416; '
                         'got %r' % args.latency_sizes)
    checked = [('width', True), ('image_size', True), ('batch_size', True)]
    for name, positive in checked + [(flag, positive) for flag, _, positive, _ in COUNTS]:
        value = getattr(args, name)
        if not (value > 0 if positive else value >= 0):
            parser.error('--%s must be %s, got %r' % (
                name, 'greater than 0' if positive else '0 or more', value))
    if args.pipeline_dir and not os.path.isdir(args.pipeline_dir):
        parser.error('--pipeline_dir %s: no such folder (a folder dataset: class subfolders of '
                     'images, or train/)' % args.pipeline_dir)
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
    """train.py's resolved configuration (the task's default preset) with the benchmark's
    flags."""
    detect = ['--task', 'detect', '--head', args.head] if args.task == 'detect' else [
        '--stem', args.stem]
    return command_line.parse_config(detect + [
        '--width', repr(args.width), '--image_size', str(args.image_size),
        '--batch_size', str(args.batch_size), '--towers', str(args.towers),
        '--onednn', args.onednn, '--pointwise', args.pointwise, '--data_dir', args.data_dir])


def format_report(summary):
    args = argparse.Namespace(**summary['flags'])
    med, ratios = summary['medians'], summary['ratios']
    keras_label = 'Keras' if summary['keras_like_for_like'] or summary['keras_stem'] is None \
        else 'Keras (ImageNet stem)'

    def num(value, fmt='%.1f'):
        return fmt % value if value is not None else '-'

    def ratio(value):
        return '%.2fx' % value if value is not None else '-'

    # (label, our median, Keras's median or None, ratio, format) of each row of the table.
    rows = (
        ('training, synthetic batch (img/s)', 'train_images_per_sec', 'keras_fit_images_per_sec',
         'train_vs_keras_fit', '%.1f'),
        ('training, PyTorch (img/s)', 'torch_train_images_per_sec', None, 'train_vs_torch',
         '%.1f'),
        ('training, 1x1 as conv2d (img/s)', 'train_conv2d_images_per_sec', None,
         'train_vs_conv2d', '%.1f'),
        ('training as before: conv2d, 1 tower', 'train_before_images_per_sec', None,
         'train_vs_before', '%.1f'),
        ('training, train.py path (img/s)', 'real_path_images_per_sec', None,
         'real_path_vs_synthetic', '%.1f'),
        ('input pipeline alone (img/s)', 'pipeline_images_per_sec', None, 'pipeline_vs_train',
         '%.1f'),
        ('inference, batch %d (img/s)' % args.batch_size, 'infer_images_per_sec',
         'keras_predict_images_per_sec', 'infer_vs_keras_predict', '%.1f'),
        ('latency, batch 1 (ms)', 'latency_ms', 'keras_latency_ms', 'keras_latency_vs_ours',
         '%.2f'),
    )
    lines = [
        '',
        'MobileNetV1: width %s, %dx%d, %s stem, batch %d, %d classes' % (
            args.width, args.image_size, args.image_size, args.stem, args.batch_size,
            args.num_classes),
        'TensorFlow %s, Keras %s, PyTorch %s, %d CPUs; median of %d repetitions x %d timed steps '
        '(%d warm-up), interleaved ours/peers%s' % (
            summary['tf_version'], summary['keras_version'], summary['torch_version'] or '-',
            summary['cpu_count'], args.repeats, args.steps, args.warmup,
            '' if summary['towers'] == 1 else
            ' (in towers: peers, inference and before in a one-tower process first)'),
        'threads intra %d inter %d (0: TensorFlow default); XLA on our train step: %s' % (
            args.intra_op_threads, args.inter_op_threads, args.xla),
        'CPU %s (%s); oneDNN %s; 1x1 convolutions in training as %s; %d tower%s' % (
            summary['cpu'], ' '.join(summary['cpu_flags']) or 'no flags read',
            summary['onednn'], summary['pointwise'], summary['towers'],
            '' if summary['towers'] == 1 else 's'),
        '',
        '%-38s %12s %22s %10s' % ('', 'ours', keras_label, 'ratio'),
    ] + ['%-38s %12s %22s %10s' % (label, num(med.get(ours), fmt), num(med.get(peer), fmt) if peer
                                    else '', ratio(ratios.get(key)))
          for label, ours, peer, key, fmt in rows] + [
        '%-38s %12s' % ('matmul %dx%d float32 (GFLOP/s)' % (args.matmul_size, args.matmul_size),
                        num(med['matmul_gflops'])),
        '%-38s %12s' % ('our training FLOP rate (GFLOP/s)', num(med['train_gflops'])),
        '%-38s %12s' % ('utilisation of the matmul peak', num(100 * med['utilisation'], '%.1f%%')),
        '',
        'ratio column: training and inference ours/Keras images/s; latency Keras ms / ours ms;',
        '  train.py path / synthetic for the train.py row (1.00x: the pipeline costs nothing);',
        '  synthetic / PyTorch for the PyTorch row (the same network, SGD Nesterov, channels-last);',
        '  synthetic / conv2d for the conv2d row: what the 1x1-as-matmul formulation gains;',
        '  synthetic / before: what the choice of formulation and towers gains on these kernels;',
        '  pipeline / synthetic for the pipeline row (--pipeline_dir): how far ahead of the step',
        '  decoding and augmentation alone run.',
        'train.py path: its graph (training/train_graph.py) on CIFAR-10 with augmentation, fetching '
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
    profile = summary['profile']
    if profile:
        lines += ['', 'The five longest ops of a training step (mean of %d traced steps; all ops '
                      'together %.1f ms, summed over threads):' % (profile['steps'],
                                                                   profile['all_ops_ms'])]
        lines += ['  %8.1f ms %5.1f%%  %-46s %s' % (op['ms'], 100 * op['ms'] / profile['all_ops_ms'],
                                                  op['type'], op['name']) for op in profile['ops']]
    lines += ['note: ' + n for n in summary['notes']]
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    return errors.run_program('benchmark.py', lambda: benchmark(args))


def benchmark(args):
    cfg, kernels = cpu_kernels.settle(model_config(args))
    print(kernels, flush=True)
    # Only now: TensorFlow picks its CPU kernels when it is imported.
    cpu_kernels.import_tensorflow()
    from benchmarking import speed
    from training import checks
    checks.check_config(cfg)
    if args.task == 'detect':
        from benchmarking import detector_speed
        summary = detector_speed.run(args, cfg)
        print(detector_speed.format_report(summary), flush=True)
        return write_summary(args, summary)
    one_tower = None
    if cfg['towers'] > 1:
        one_tower = _one_tower_process(args, cfg)
        if isinstance(one_tower, str):
            raise errors.ProjectError(one_tower)
    summary = speed.run(args, cfg)
    if one_tower is not None:
        summary = speed.merge_one_tower(summary, one_tower)
    print(format_report(summary), flush=True)
    write_summary(args, summary)


def write_summary(args, summary):
    """The JSON line, printed last, and to --output."""
    line = json.dumps(summary, sort_keys=True)
    if args.output:
        try:
            with open(args.output, 'w') as f:
                f.write(line + '\n')
        except OSError as e:
            raise errors.UsageError('%s: cannot write (%s)' % (args.output, e.strerror or e)) from e
    print(line, flush=True)


def _one_tower_process(args, cfg):
    """The summary of this benchmark in one tower with 1x1 convolutions as Conv2D, on the same
    kernels, in a process of its own; or the error line if it failed."""
    print('Measuring inference, the peers and the one-tower Conv2D step in a one-tower process...',
          flush=True)
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, 'one_tower.json')
        argv = [sys.executable, os.path.abspath(__file__), '--towers=1', '--pointwise=conv2d',
                '--onednn=' + cfg['onednn'], '--profile=0', '--skip_real_path', '--output=' + output]
        for key, value in vars(args).items():
            if key not in ('towers', 'pointwise', 'onednn', 'profile', 'skip_real_path', 'output',
                           'pipeline_dir'):
                argv += ['--' + key] if value is True else [] if value is False else \
                    ['--%s=%s' % (key, value)]
        lines = []
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as child:
            for line in child.stdout:
                lines.append(line.rstrip('\n'))
                if line.startswith('repetition'):
                    print('  one tower: ' + lines[-1], flush=True)
        if child.returncode:
            return 'the one-tower process failed (exit %d): %s' % (
                child.returncode, lines[-1] if lines else '')
        with open(output) as f:
            return json.loads(f.read())


if __name__ == '__main__':
    sys.exit(main())
