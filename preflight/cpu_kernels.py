"""The fastest way to train on this CPU, chosen before TensorFlow is imported.

TensorFlow has two families of CPU kernels: oneDNN's, which it turns on by default only on
CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX, and its own Eigen kernels, which run
everywhere else (and wherever TF_ENABLE_ONEDNN_OPTS=0). It reads TF_ENABLE_ONEDNN_OPTS once,
at import, so `settle` sets it first. Neither family is fastest everywhere: Eigen's gradient
of a 1x1 Conv2D on a small map is up to 70x slower than the same matmul, and oneDNN's AVX2
gradient of the depthwise filters takes most of a step on the ImageNet stem's small maps.

Training images/s, medians of benchmark.py (width 1.0, 32x32, batch 128, one tower) on a
2-core AMD EPYC (Zen 4, AVX-512), oneDNN's AVX2 kernels through ONEDNN_MAX_CPU_ISA=AVX2,
each row one run with both formulations side by side (results/benchmark/):

    kernels          stem      conv2d  matmul
    oneDNN AVX-512   imagenet     752    1000
    oneDNN AVX-512   cifar        342     349
    oneDNN AVX2      imagenet     433     445
    oneDNN AVX2      cifar        234     237
    Eigen            imagenet     105     653
    Eigen            cifar         87     198

So: 1x1 convolutions as matmul everywhere; oneDNN wherever it has AVX-512 kernels, and on
AVX2 for the CIFAR stem but not the ImageNet stem. Both are flags (`--onednn`,
`--pointwise`), and TF_ENABLE_ONEDNN_OPTS set by the user is obeyed as TensorFlow would.
"""
import glob
import importlib.metadata
import os
import sys
import tempfile

from preflight.errors import UsageError


ONEDNN = ('auto', 'on', 'off')

POINTWISE = ('auto', 'conv2d', 'matmul')  # 'auto' and mobilenet.POINTWISE, without TensorFlow

# What TensorFlow's own default looks for (DefaultOneDnnPolicy in tensorflow/core/util/util.cc).
_TF_ONEDNN_FEATURES = ('avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16')

_AVX512 = ('avx512f', 'avx512bw', 'avx512dq', 'avx512vl')  # oneDNN's avx512_core

_WIDTH = ('older', 'AVX2', 'AVX-512', 'AMX')

# Batch norm normalises each tower's share of the batch: 'auto' splits only batches whose
# halves keep at least this many images (so the `seed` preset's batch of 16 stays whole).
TOWER_MIN_IMAGES = 32


def cpu_flags(path='/proc/cpuinfo'):
    """The CPU's feature flags (empty where /proc/cpuinfo is missing: not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def vector_flags(flags):
    """The flags that say which kernels can run: AVX2, FMA, AVX-512 and AMX."""
    return {f for f in flags if f in ('avx2', 'fma') or f.startswith(('avx512', 'amx', 'avx_vnni'))}


def instruction_set(flags):
    """'AMX', 'AVX-512', 'AVX2' or 'older': the widest vector unit oneDNN would use."""
    if 'amx_tile' in flags:
        return 'AMX'
    if all(f in flags for f in _AVX512):
        return 'AVX-512'
    if 'avx2' in flags and 'fma' in flags:
        return 'AVX2'
    return 'older'


def onednn_kernels(flags, environ):
    """The instruction set oneDNN's kernels run: the CPU's, lowered by ONEDNN_MAX_CPU_ISA."""
    cap = environ.get('ONEDNN_MAX_CPU_ISA', '').upper()
    capped = ('AMX' if cap in ('', 'ALL', 'DEFAULT') or 'AMX' in cap
              else 'AVX-512' if cap.startswith(('AVX512', 'AVX10'))
              else 'AVX2' if cap.startswith('AVX2') else 'older')
    return min(instruction_set(flags), capped, key=_WIDTH.index)


def check_flags(cfg):
    """UsageError unless --onednn, --pointwise and --towers are values this module knows."""
    for key, allowed in (('onednn', ONEDNN), ('pointwise', POINTWISE)):
        if cfg[key] not in allowed:
            raise UsageError('--%s must be one of %s, got %r' % (key, ', '.join(allowed), cfg[key]))
    towers = cfg.get('towers', 'auto')
    if towers != 'auto' and not (isinstance(towers, int) and towers > 0):
        raise UsageError("--towers must be 'auto' or a whole number greater than 0, got %r"
                         % towers)


def choose(cfg, flags, environ):
    """{'onednn': bool or None (TensorFlow's default), 'pointwise': str, 'why': str,
    'pointwise_why': str} for cfg's --onednn, --pointwise and stem."""
    check_flags(cfg)
    kernels = onednn_kernels(flags, environ)
    if cfg['onednn'] != 'auto':
        onednn, why = cfg['onednn'] == 'on', '--onednn %s' % cfg['onednn']
    elif environ.get('TF_ENABLE_ONEDNN_OPTS', '').lower() in ('0', 'false', '1', 'true'):
        onednn = environ['TF_ENABLE_ONEDNN_OPTS'].lower() in ('1', 'true')
        why = 'TF_ENABLE_ONEDNN_OPTS=%s' % environ['TF_ENABLE_ONEDNN_OPTS']
    elif kernels in ('AMX', 'AVX-512'):
        onednn, why = True, 'auto: oneDNN has %s kernels' % kernels
    elif kernels == 'AVX2':
        onednn = cfg['stem'] != 'imagenet'
        why = 'auto: AVX2, %s stem' % cfg['stem']
    else:
        # Unmeasured here, or flags unread (not Linux): TensorFlow decides, as it would alone.
        onednn, why = None, "auto: TensorFlow's default for this CPU"
    pointwise, pointwise_why = pointwise_choice(cfg['pointwise'])
    return dict(onednn=onednn, pointwise=pointwise, why=why, pointwise_why=pointwise_why)


def pointwise_choice(value):
    """(formulation, why) for --pointwise: 'auto' is matmul, the faster on every kernel family
    measured; the other values are themselves."""
    if value == 'auto':
        return 'matmul', 'auto: the faster on every kernel family measured'
    return value, '--pointwise %s' % value


def towers_choice(value, batch_size, cores=None, gpu=None):
    """(towers, why) for --towers: 'auto' is 2 on a CPU of 2 or more cores when each half of
    the batch keeps TOWER_MIN_IMAGES images, else 1; a number is itself."""
    if value != 'auto':
        return value, '--towers %s' % value
    cores = usable_cores() if cores is None else cores
    gpu = gpu_present() if gpu is None else gpu
    if gpu:
        return 1, 'auto: a GPU may take the step, whole'
    if cores < 2:
        return 1, 'auto: one core'
    if batch_size % 2 or batch_size // 2 < TOWER_MIN_IMAGES:
        return 1, 'auto: halves of batch %d would hold fewer than %d images' % (
            batch_size, TOWER_MIN_IMAGES)
    return 2, 'auto: %d cores, %d images a tower' % (cores, batch_size // 2)


def usable_cores():
    """The CPU cores this process may run on (taskset and cpusets included)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpu_present(environ=None):
    """Whether TensorFlow may find a GPU: a build that can use one (not tensorflow-cpu) and an
    NVIDIA or AMD device node that CUDA_VISIBLE_DEVICES does not hide (all read without
    importing TensorFlow, which would fix its CPU kernels)."""
    environ = os.environ if environ is None else environ
    if environ.get('CUDA_VISIBLE_DEVICES', None) in ('', '-1'):
        return False
    try:
        importlib.metadata.version('tensorflow-cpu')
        return False
    except importlib.metadata.PackageNotFoundError:
        pass
    return bool(glob.glob('/dev/nvidia[0-9]*') or os.path.exists('/dev/kfd'))


def import_tensorflow():
    """import tensorflow, without the oneDNN notice its two libraries print as they load (twice,
    before TF_CPP_MIN_LOG_LEVEL applies): the CPU line settle() makes says the same. Anything
    else TensorFlow prints on its way in passes through."""
    if 'tensorflow' in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            importlib.import_module('tensorflow')
        except ImportError as e:
            raise UsageError("TensorFlow does not import in %s (%s); run the programs with the "
                             "Python the README's set-up installs, .venv/bin/python"
                             % (sys.executable, e)) from e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode('utf-8', 'replace').splitlines():
                if not any(noise in line for noise in _IMPORT_NOISE):
                    print(line, file=sys.stderr)


# What TensorFlow 2.21 prints while its libraries load, whatever TF_CPP_MIN_LOG_LEVEL says.
_IMPORT_NOISE = ('oneDNN custom operations are', 'before absl::InitializeLog() is called')


def onednn_enabled():
    """Whether the TensorFlow imported in this process runs oneDNN's kernels."""
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())


def training_pointwise(cfg):
    """The 1x1 formulation of cfg's training graph: settled, or 'auto' resolved as settle does."""
    return pointwise_choice(cfg['pointwise'])[0]


def training_towers(cfg):
    """cfg's towers: settled, or 'auto' resolved as settle does for one worker's batch."""
    return towers_choice(cfg['towers'], cfg.get('worker_batch', cfg['batch_size']))[0]


def settle(cfg, environ=None, flags=None, workers=1):
    """cfg with 'onednn' ('on'/'off'), 'pointwise', 'towers', 'cpu', 'workers' (the cluster's)
    and 'worker_batch' (each worker's share of --batch_size) resolved, and a line saying so.

    Sets TF_ENABLE_ONEDNN_OPTS when TensorFlow is not imported yet. Where it is (a test, a
    notebook), its kernels cannot change: the state it has is recorded, with a note.
    """
    environ = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    choice = choose(cfg, flags, environ)
    note = ''
    if 'tensorflow' in sys.modules:
        onednn = onednn_enabled()
        if choice['onednn'] is not None and onednn != choice['onednn']:
            note = ' (TensorFlow was imported before the choice, with oneDNN %s)' % (
                'on' if onednn else 'off')
    elif choice['onednn'] is None:
        # What TensorFlow's DefaultOneDnnPolicy will find on Linux; the variable stays unset.
        onednn = any(f in flags for f in _TF_ONEDNN_FEATURES)
    else:
        onednn = choice['onednn']
        environ['TF_ENABLE_ONEDNN_OPTS'] = '1' if onednn else '0'
    cfg = dict(cfg, workers=workers, worker_batch=cfg['batch_size'] // workers)
    if cfg.get('task') == 'detect':
        towers, towers_why = 1, 'the detector steps whole'
    else:
        towers, towers_why = towers_choice(cfg['towers'], cfg['worker_batch'])
    cfg = dict(cfg, onednn='on' if onednn else 'off', pointwise=choice['pointwise'],
               towers=towers, cpu=instruction_set(flags))
    line = 'CPU: %s; oneDNN %s (%s)%s; 1x1 convolutions as %s (%s); %d tower%s (%s)' % (
        cfg['cpu'], cfg['onednn'], choice['why'], note, cfg['pointwise'], choice['pointwise_why'],
        towers, '' if towers == 1 else 's', towers_why)
    return cfg, line
