"""Writing a file, a set of files or a folder all or nothing: a reader (or the next run) sees the
earlier version whole or the new one whole, whatever stops the writer (a full disk, a failed
rename, Ctrl-C, a kill). Imports no TensorFlow."""
import contextlib
import errno
import os
import shutil
import signal
import socket
import tempfile
import threading


def write_files(outputs):
    """Writes {path: bytes or str} all or nothing: every file goes to PATH.tmp first; only once
    all are written does each earlier file step aside to PATH.old and the new one take its place,
    with Ctrl-C and SIGTERM held until the last is in place. A failure puts the earlier files back
    and leaves no .tmp or .old behind; what a writer killed mid-swap left is set right first
    (recover_swap). A path that is a folder is an IsADirectoryError before anything is written."""
    for path in outputs:
        if os.path.isdir(path):  # would be moved aside, and the files written into its place
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    for path in outputs:
        recover_swap(path)
    pending, placed = [], []  # temporary files; (path, its earlier file's .old or None)
    try:
        for path, data in outputs.items():
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            pending.append(path + '.tmp')
            with open(path + '.tmp', 'wb' if isinstance(data, bytes) else 'w') as f:
                f.write(data)
        with signals_held():
            try:
                for path in outputs:
                    old = path + '.old' if os.path.lexists(path) else None
                    if old:
                        os.replace(path, old)
                    placed.append((path, old))
                    os.replace(path + '.tmp', path)
                    pending.remove(path + '.tmp')
            except BaseException:
                for path, old in reversed(placed):
                    if old:
                        os.replace(old, path)
                    elif os.path.lexists(path):
                        os.remove(path)
                raise
            for _, old in placed:
                if old:
                    os.remove(old)
    finally:
        for temp in pending:
            if os.path.isfile(temp):
                os.remove(temp)


def recover_swap(path):
    """Puts back the earlier file of a write_files killed in the middle of its swap: PATH gone,
    PATH.old and PATH.tmp there. (A PATH.old beside PATH is left: the next swap replaces it.)"""
    if not os.path.lexists(path) and os.path.isfile(path + '.old') and \
            os.path.isfile(path + '.tmp'):
        os.replace(path + '.old', path)


@contextlib.contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait for the block to end, then act as they would have: a sequence of
    renames cut in the middle would leave neither version whole. (The main thread only sets
    handlers; Python runs them there.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught, previous = [], {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda signum, frame: caught.append(signum))
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:  # acted on now, over an error of the block too
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def topmost_missing(path):
    """The outermost folder of `path` that does not exist yet (what making it would create), or
    None when it exists."""
    created, folder = None, os.path.abspath(path)
    while not os.path.exists(folder):
        created, folder = folder, os.path.dirname(folder)
    return created


@contextlib.contextmanager
def staged_folder(out_dir, prefix='.staging-', last=()):
    """Yields a hidden folder inside `out_dir` (made if need be) to write into; when the block
    ends, its entries move into `out_dir` (those named in `last` after the others, so that an
    index never points at files not yet in place; each entry moves whole). Other files of
    `out_dir` stay. On any failure the hidden folder goes, and so do the folders this call made
    that are left empty; the hidden folders of writers that were killed (named with their process
    id) go when the next one starts."""
    created, staging, done = topmost_missing(out_dir), None, False
    try:
        os.makedirs(out_dir, exist_ok=True)
        # What a writer killed part way on this machine left (SIGKILL, power): its process is
        # gone. A folder shared between machines keeps the others' (their ids mean nothing here).
        host = socket.gethostname()
        for name in os.listdir(out_dir):
            pid, _, rest = name[len(prefix):].partition('@')
            if name.startswith(prefix) and pid.isdigit() and rest.rpartition('-')[0] == host \
                    and not _alive(int(pid)):
                shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
        staging = tempfile.mkdtemp(prefix='%s%d@%s-' % (prefix, os.getpid(), host), dir=out_dir)
        yield staging
        with signals_held():
            for name in sorted(os.listdir(staging), key=lambda name: name in last):
                os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
            done = True
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            remove_made(out_dir, created)


def file_in_the_way(folder):
    """The file that stops `folder` from being made, or being a folder (itself, or the nearest
    of its parents that exists); None when nothing is in the way."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return None if os.path.isdir(existing) else existing


def remove_made(path, created):
    """Removes the folder `path` and each above it up to `created` (topmost_missing's) while
    they are empty: another writer may have put something there meanwhile."""
    folder = os.path.abspath(path)
    while len(folder) >= len(created):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
