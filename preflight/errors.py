"""The project's exceptions, and the one place that turns them into a line and an exit code.

Libraries raise these; every program runs its work through `run_program`, which prints
`PROGRAM: error: MESSAGE` on stderr and returns the shell's code: 2 for what the user can fix
(a flag, a path, data, a model file, a cluster that never formed), 1 for a failure mid-run (a
lost worker, a loss gone NaN), 130 for Ctrl-C and 143 for SIGTERM. Imports no TensorFlow.
"""
import os
import signal
import sys
import threading


class ProjectError(Exception):
    """What a program reports in one line, str(e), naming the file or flag and what is wrong."""
    exit_code = 2


class UsageError(ProjectError):
    """A bad flag, path or combination of them."""


class DataError(ProjectError):
    """Missing or bad data: CIFAR-10 files, or a folder or TFRecord dataset of own images."""


class ModelError(ProjectError):
    """A checkpoint or model file that cannot be used."""


class Diverged(ProjectError):
    """The loss is no longer a number: the run stops without saving."""
    exit_code = 1


class LostWorker(ProjectError):
    """A peer died or stopped answering; `starting`: it never joined, a cluster to set up (2)."""

    def __init__(self, message, starting):
        super().__init__(message)
        self.starting = starting
        self.exit_code = 2 if starting else 1


class ImageError(Exception):
    """Bytes that are not an image Pillow can decode: str(e) says why, in one line. Never
    reaches a program: the datasets skip and name such an image."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a scheduler's preemption): handled as Ctrl-C is, but exits 143, not 130."""


def _terminate(signum, frame):
    raise Terminated


def run_program(program, work, terminate=False):
    """work()'s exit code (0 when it returns None): a ProjectError is its one line on stderr and
    its code; Ctrl-C is 130, as the shell reports it. With `terminate`, SIGTERM is handled as
    Ctrl-C is (work saves what it must) and exits 143; else it ends the process at once."""
    handled = terminate and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if handled else None
    try:
        code = work()
    except ProjectError as e:
        print('%s: error: %s' % (program, e), file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt as e:
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    except BrokenPipeError:
        # Output piped into a reader that stopped (`| head`): quiet, as other tools are. What
        # is left to print goes nowhere, not into a second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        if handled:
            # Called from other code (tests, a notebook), a later SIGTERM is theirs again. None: a
            # handler set outside Python, which cannot be put back; the default is the nearest.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return 0 if code is None else code
