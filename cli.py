"""config.py's values as a command line: parsing and flag types, without TensorFlow.

TensorFlow reads some settings (oneDNN) once, when it is imported, so train.py and
benchmark.py resolve their flags with this module before importing it.
"""
import argparse

import config


class UsageError(Exception):
    """A bad flag or path: str(e) is the one line shown to the user."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a scheduler's preemption): handled as Ctrl-C is, but exits 143, not 130."""


def parse_config(argv=None, description=None):
    """Resolved hyperparameters: DEFAULTS, then the preset, then the flags given."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(config.PRESETS), default=config.DEFAULT_PRESET,
                        help='named recipe applied on top of config.DEFAULTS (default: %(default)s)')
    for name, default in config.DEFAULTS.items():
        kind = FLAG_TYPES.get(name, flag_type(default))
        parser.add_argument('--' + name, type=kind, default=None,
                            metavar=getattr(kind, 'metavar', type(default).__name__.upper()),
                            help='%s (default: %r; a preset may change it)'
                                 % (config.HELP[name], default))
    args = parser.parse_args(argv)
    cfg = dict(config.DEFAULTS, **config.PRESETS[args.preset])
    cfg.update({k: v for k, v in vars(args).items() if v is not None and k != 'preset'})
    cfg['preset'] = args.preset
    return cfg


def flag_type(default):
    if isinstance(default, bool):
        return _parse_bool
    return type(default)


def _towers(text):
    if text == 'auto':
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'auto' or a whole number, got %r" % text)


_towers.metavar = 'N|auto'
# Flags whose values are not all of their default's type.
FLAG_TYPES = dict(towers=_towers)


def _parse_bool(text):
    value = {'1': True, 'true': True, 'yes': True, '0': False, 'false': False, 'no': False}
    if text.lower() not in value:
        raise argparse.ArgumentTypeError('expected 1/0 or true/false, got %r' % text)
    return value[text.lower()]
