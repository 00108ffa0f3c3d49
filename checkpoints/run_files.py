"""The files of a run's folder beside its checkpoints: config.json, metrics.jsonl and train.lock."""
import contextlib
import fcntl
import io
import json
import os

import tensorflow as tf

from checkpoints import reading
import config
from preflight import errors
from preflight import files
from preflight.errors import UsageError


def run_file(prefix, name):
    """A file a run keeps beside its checkpoints (config.json, metrics.jsonl): in the
    checkpoint's folder, or the folder above for checkpoints under best/. None if absent. An
    imported checkpoint's settings are its own, PREFIX.json (import_weights.py), so that imports
    share a folder."""
    if name == 'config.json' and os.path.isfile(prefix + '.json'):
        return prefix + '.json'
    folder = os.path.dirname(os.path.abspath(prefix))
    candidates = [folder]
    # Only best/ is a run's own subfolder; the folder above any other may hold unrelated runs.
    if os.path.basename(folder) == reading.BEST_FOLDER:
        candidates.append(os.path.dirname(folder))
    for candidate in candidates:
        path = os.path.join(candidate, name)
        if os.path.exists(path):
            return path
    return None


def read_run_config(prefix):
    """The training config saved with a checkpoint, or {} if there is none."""
    path = run_file(prefix, 'config.json')
    return {} if path is None else load_config(path)


def data_settings(run, given):
    """{key: value} of config.DATA_KEYS for a program reading the run whose config.json is
    `run` ({} if none): each value `given` (not None), else the run's, else the default. The
    run's split settings hold for the run's own data only: `given` another dataset or folder,
    its splits are the flags' alone (another folder alone is still of the run's kind)."""
    own = all(given.get(key) is None or key in run and os.path.realpath(str(given[key])) ==
              os.path.realpath(str(run[key])) for key in ('dataset', 'data_dir'))
    source = run if own else {key: run[key] for key in ('dataset',) if key in run
                              and given.get('dataset') is None}
    return {key: given[key] if given.get(key) is not None else source.get(key, config.DEFAULTS[key])
            for key in config.DATA_KEYS}


def load_config(path):
    """A run's config.json: a JSON object whose values have the types of config.DEFAULTS';
    ModelError naming the file and the value when hand-editing made it something else."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise errors.ModelError('%s: cannot read (%s)' % (path, reading.first_line(e))) from e
    if not isinstance(saved, dict):
        raise errors.ModelError('%s: holds a JSON %s, not the object of settings train.py writes'
                         % (path, type(saved).__name__))
    for key, default in config.DEFAULTS.items():
        if key in saved and key != 'towers' and not _same_kind(saved[key], default):
            raise errors.ModelError('%s: %s is %s, not %s' % (path, key, json.dumps(saved[key]),
                                                        _KINDS[type(default)]))
    fraction = saved.get('central_fraction', 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not 0 < fraction <= 1:
        raise errors.ModelError('%s: central_fraction is %s, not a number in (0, 1]'
                                % (path, json.dumps(fraction)))
    names = saved.get('label_names', [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise errors.ModelError('%s: label_names is %s, not a list of class names'
                         % (path, json.dumps(names)))
    return saved

_KINDS = {bool: 'true or false', int: 'a whole number', float: 'a number', str: 'a string'}


def _same_kind(value, default):
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


# In a run's folder while train.py trains it: the process's id, under an exclusive lock.
LOCK_FILE = 'train.lock'


@contextlib.contextmanager
def run_folder(ckpt_dir, chief=True):
    """The run's folder for the block: made if need be, and held by the chief. Two trainings in
    one folder would interleave their checkpoints and metrics: a second is refused while the
    first holds the folder's lock, which the kernel releases however the first ends (a SIGKILL
    too), so a lock is never stale. A run refused before it wrote anything leaves no folder
    behind: those this call made go again when the block ends with nothing in them but the
    lock. Other workers write nothing there, and make nothing."""
    if not chief:
        yield
        return
    blocker = files.file_in_the_way(ckpt_dir)
    if blocker:
        raise UsageError('--ckpt_dir %s: %s is a file, not a folder' % (ckpt_dir, blocker))
    created = files.topmost_missing(ckpt_dir)
    try:
        os.makedirs(ckpt_dir, exist_ok=True)
    except OSError as e:
        raise UsageError('--ckpt_dir %s: cannot create it (%s)' % (ckpt_dir, e.strerror)) from e
    path, lock = os.path.join(ckpt_dir, LOCK_FILE), None
    try:
        try:
            lock = open(path, 'a+')
        except OSError as e:
            raise UsageError('%s: cannot write (%s)' % (path, e.strerror)) from e
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise UsageError('--ckpt_dir %s is in use by another training%s; wait for it to end, '
                             'or use another --ckpt_dir' % (
                                 ckpt_dir, ' (process %s)' % holder if holder.isdigit() else ''))
        except OSError:
            pass  # a filesystem without locks (some network mounts): unguarded, as before
        lock.seek(0)
        lock.truncate()
        lock.write('%d\n' % os.getpid())
        lock.flush()
        yield
    finally:
        if lock:
            lock.close()
        if created:
            try:
                only_the_lock = set(os.listdir(ckpt_dir)) <= {LOCK_FILE}
            except OSError:
                only_the_lock = False
            if only_the_lock:
                os.remove(path)
                files.remove_made(ckpt_dir, created)


def write_config(path, values):
    """A run's config.json, all or nothing; a failure is writing()'s one line."""
    with writing(path):
        text = io.StringIO()
        json.dump(values, text, indent=1, sort_keys=True)
        files.write_files({path: text.getvalue()})


@contextlib.contextmanager
def writing(path):
    """A write that fails (a full disk, a folder made read-only) is one line: the previous
    checkpoint and metrics are whole (resume drops a metrics line its checkpoint lacks)."""
    try:
        yield
    except OSError as e:
        why = e.strerror or str(e)
    except tf.errors.OpError as e:  # the Saver's
        why = reading.first_line(e)
    else:
        return
    raise UsageError('%s: cannot write (%s); what was saved before is whole: make room and run '
                     'the same command to resume' % (path, why))


def read_metrics(metrics_path, last_epoch):
    """The metrics lines of epochs up to `last_epoch`, rewriting the file without later ones.

    An interrupt between an epoch's metrics line and its checkpoint leaves a line that the
    resumed run writes again; a crash mid-write leaves a line that does not parse.
    """
    if not os.path.exists(metrics_path):
        return []
    records = []
    with open(metrics_path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get('epoch', 0), int):
                continue  # damaged by hand: dropped as a line cut short is
            if record.get('epoch', 0) <= last_epoch:
                records.append(record)
    files.write_files({metrics_path: ''.join(json.dumps(r) + '\n' for r in records)})
    return records
