"""Every program's command line: config.py's values as flags, the architecture flags of the
inference programs, and the parser they all use, without TensorFlow.

TensorFlow reads some settings (oneDNN) once, when it is imported, and takes seconds to
import: flags are parsed, and --help answered, before it is.
"""
import argparse
import difflib
import io
import re
import tokenize

import config


class ArgumentParser(argparse.ArgumentParser):
    """argparse as every program here uses it: a flag is spelled whole (--epoch is not taken for
    --epochs), an error is one line, and a mistyped flag is answered with the closest one."""

    def __init__(self, **kwargs):
        kwargs.setdefault('formatter_class', argparse.RawDescriptionHelpFormatter)
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message):
        unknown = re.match(r'unrecognized arguments: (.*)', message)
        if unknown:
            words = unknown.group(1).split()
            flag = next((w for w in words if w.startswith('-')), words[0]).split('=')[0]
            known = [o for action in self._actions for o in action.option_strings]
            closest = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            message = 'unrecognized argument %s; %s' % (
                flag, 'did you mean %s?' % closest[0] if closest else 'see --help')
        self.exit(2, '%s: error: %s\n' % (self.prog, message))


def config_help(source, names):
    """{name: help} from config.py's `source`: the comment beside each of `names` in DEFAULTS,
    with the comment lines under it that are indented past the names (a wrapped comment); a
    name without one is an error at once, so a flag never goes undocumented."""
    texts, current, column = {}, None, None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.string in names and token.start[1] > 0 \
                and token.string not in texts:
            current, column = token.string, token.start[1]
            texts[current] = []
        elif token.type == tokenize.COMMENT and current:
            own_line = token.line[:token.start[1]].strip() == ''
            if own_line and token.start[1] <= column:
                current = None  # a section heading, such as '# Model'
            else:
                texts[current].append(token.string.lstrip('#').strip())
        elif token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE) and current \
                and texts[current] and token.start[1] <= column:
            current = None
    missing = [name for name in names if not texts.get(name)]
    if missing:
        raise SyntaxError('config.py: %s has no comment beside it; the comment is its --help'
                          % missing[0])
    return {name: ' '.join(lines) for name, lines in texts.items()}


with open(config.__file__, encoding='utf-8') as _source:
    HELP = config_help(_source.read(), config.DEFAULTS)


def parse_config(argv=None, description=None):
    """Resolved hyperparameters: DEFAULTS, then the preset, then the flags given."""
    parser = ArgumentParser(description=description)
    parser.add_argument('--preset', choices=sorted(config.PRESETS), default=None,
                        help='named recipe applied on top of config.DEFAULTS (default: %s)' % ', '.join(
                            '%s for --task %s' % (preset, task)
                            for task, preset in config.DEFAULT_PRESETS.items()))
    for name, default in config.DEFAULTS.items():
        kind = FLAG_TYPES.get(name, flag_type(default))
        parser.add_argument('--' + name, type=kind, default=None,
                            metavar=getattr(kind, 'metavar', type(default).__name__.upper()),
                            help='%s (default: %r; a preset may change it)'
                                 % (HELP[name], default))
    args = parser.parse_args(argv)
    preset = args.preset or config.DEFAULT_PRESETS.get(args.task or config.DEFAULTS['task'],
                                                       config.DEFAULT_PRESETS['classify'])
    cfg = dict(config.DEFAULTS, **config.PRESETS[preset])
    cfg.update({k: v for k, v in vars(args).items() if v is not None and k != 'preset'})
    cfg['preset'] = preset
    return cfg


def add_architecture_flags(parser, image_size=None):
    """Flags that describe a checkpoint with no config.json beside it; `image_size` (type,
    help) where a program reads that flag otherwise."""
    for key in config.ARCHITECTURE_KEYS:
        if key == 'image_size' and image_size:
            parser.add_argument('--' + key, type=image_size[0], default=None, help=image_size[1])
            continue
        parser.add_argument('--' + key, type=flag_type(config.DEFAULTS[key]), default=None,
                            help='%s: %s (default: from the config.json saved with the '
                                 'checkpoint, else %r)' % (
                                     'checkpoints, and .tflite models that do not say it'
                                     if key == 'normalization' else 'checkpoints only',
                                     HELP[key], config.DEFAULTS[key]))


def add_data_flags(parser, purpose, keys=config.DATA_KEYS):
    """`keys` of config.DATA_KEYS as flags of a program that reads a run's data for `purpose`:
    None unless given, so that the run's own values fill in (run_files.data_settings)."""
    for key in keys:
        parser.add_argument('--' + key, type=flag_type(config.DEFAULTS[key]), default=None,
                            choices=config.DATASETS if key == 'dataset' else None,
                            help="%s: %s (default: the run's, from its config.json, else %r)"
                                 % (purpose, HELP[key], config.DEFAULTS[key]))


def architecture_overrides(args):
    return {k: getattr(args, k) for k in config.ARCHITECTURE_KEYS}


def flag_type(default):
    if isinstance(default, bool):
        return parse_bool
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


def parse_bool(text):
    value = {'1': True, 'true': True, 'yes': True, '0': False, 'false': False, 'no': False}
    if text.lower() not in value:
        raise argparse.ArgumentTypeError('expected 1/0 or true/false, got %r' % text)
    return value[text.lower()]
