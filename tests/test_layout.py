"""The shape of the code: programs on top, libraries in packages by role, imports going down,
one exception module, one plan per run, flags with their help, parsed before TensorFlow."""
import ast
import os
import subprocess
import sys

import pytest

import config
from preflight import command_line

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
PROGRAMS = ('train', 'evaluate', 'predict', 'freeze_graph', 'export_weights', 'import_weights',
            'convert_to_tfrecord', 'benchmark', 'plot_runs')
PACKAGES = ('benchmarking', 'checkpoints', 'datasets', 'deployment', 'detection', 'distribution',
            'importing', 'pipelines', 'preflight', 'tasks', 'training')


def libraries():
    """{module name: path} of every module but the programs and the tests."""
    found = {'mobilenet': 'mobilenet.py', 'config': 'config.py', 'data_utils': 'data_utils.py'}
    for package in PACKAGES:
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith('.py') and name != '__init__.py':
                found['%s.%s' % (package, name[:-3])] = os.path.join(package, name)
    return found


def imported(path):
    """The project modules a file imports, anywhere in it (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update('%s.%s' % (node.module, alias.name) for alias in node.names)
            names.add(node.module)
    return names


def test_the_top_level_holds_the_programs_and_the_modules_users_edit():
    top = sorted(name[:-3] for name in os.listdir(ROOT) if name.endswith('.py'))
    assert top == sorted(PROGRAMS + ('config', 'data_utils', 'mobilenet'))
    for package in PACKAGES:
        with open(os.path.join(ROOT, package, '__init__.py')) as f:
            assert f.read().startswith('"""'), package  # its first lines say what it holds


def test_no_library_imports_a_program_or_the_command_line():
    for module, path in libraries().items():
        wrong = imported(path) & (set(PROGRAMS) | {'preflight.command_line'})
        assert not wrong, '%s imports %s' % (path, ', '.join(sorted(wrong)))


def test_exceptions_are_defined_in_one_module():
    for module, path in libraries().items():
        if module == 'preflight.errors':
            continue
        tree = ast.parse(open(os.path.join(ROOT, path)).read())
        classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                   and any(getattr(base, 'id', getattr(base, 'attr', '')).endswith(
                       ('Error', 'Exception', 'Interrupt')) for base in node.bases)]
        assert not classes, '%s defines %s' % (path, ', '.join(classes))


def test_preflight_imports_no_tensorflow():
    """What runs before TensorFlow is imported must not import it: the kernel choice is read
    once, at TensorFlow's import."""
    modules = sorted(m for m in libraries() if m.startswith('preflight.'))
    code = ('import sys\nimport %s\nprint("tensorflow" in sys.modules)' % ', '.join(modules))
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'False'


@pytest.mark.parametrize('program', PROGRAMS)
def test_help_comes_before_tensorflow(program):
    code = ('import runpy, sys\nsys.argv = [%r, "--help"]\ntry:\n'
            '    runpy.run_path(%r, run_name="__main__")\nexcept SystemExit:\n    pass\n'
            'print("tensorflow" in sys.modules)' % (program + '.py', program + '.py'))
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'usage: %s.py' % program in result.stdout
    assert result.stdout.strip().splitlines()[-1] == 'False'


def test_a_wrapped_comment_is_read_whole_and_a_missing_one_is_refused():
    source = ('DEFAULTS = dict(\n'
              '    # Data\n'
              '    first=1,        # the first value, whose comment\n'
              '                    # goes on here\n'
              '    second=2,       # the second\n'
              '\n'
              '    # Model\n'
              '    third=3,        # the third\n'
              ')\n')
    assert command_line.config_help(source, ['first', 'second', 'third']) == dict(
        first='the first value, whose comment goes on here', second='the second',
        third='the third')
    with pytest.raises(SyntaxError, match='third has no comment'):
        command_line.config_help(source.replace('# the third', ''), ['first', 'second', 'third'])
    assert sorted(command_line.HELP) == sorted(config.DEFAULTS)


@pytest.mark.parametrize('typed, suggested', [('--bath_size', '--batch_size'),
                                               ('--epoch', '--epochs')])
def test_a_mistyped_or_shortened_flag_is_named_with_the_closest(capsys, typed, suggested):
    with pytest.raises(SystemExit) as exit_info:
        command_line.parse_config([typed, '2'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        'error: unrecognized argument %s; did you mean %s?' % (typed, suggested))


def test_the_plan_cannot_be_changed():
    from training import plan
    settled = plan.Plan(dict(config.DEFAULTS, workers=1))
    with pytest.raises(TypeError):
        settled['lr'] = 1.0
    assert dict(settled)['lr'] == config.DEFAULTS['lr']


def test_tensorflow_says_nothing_on_its_way_in(tmp_path):
    """Its oneDNN notice, printed twice by TensorFlow 2.21 before its log settings apply, is
    left out: a program's error is its only line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith('TF_CPP')}
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'predict.py'),
                             str(tmp_path / 'missing.pb'), str(tmp_path / 'photo.jpg')],
                            cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ['predict.py: error: %s: no such file'
                                          % (tmp_path / 'missing.pb')]


def test_a_run_refused_at_its_start_leaves_no_folder_behind(capsys, tiny_cifar, tmp_path):
    import train
    run = tmp_path / 'new' / 'run'
    code = train.main(['--width', '0.25', '--batch_size', '16', '--epochs', '1',
                       '--data_dir', str(tiny_cifar), '--ckpt_dir', str(run), '--load_pretrain',
                       '1', '--pretrain_path', str(tmp_path / 'missing.ckpt')])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        'train.py: error: --pretrain_path %s' % (tmp_path / 'missing.ckpt'))
    assert not run.exists()


def test_plot_runs_takes_its_title_and_test_size_from_the_runs(tmp_path, monkeypatch):
    import matplotlib.figure
    import plot_runs
    run = tmp_path / 'photos'
    run.mkdir()
    (run / 'metrics.jsonl').write_text('{"epoch": 1, "wall_seconds": 60.0, "test_accuracy": 0.4}\n')
    (run / 'config.json').write_text('{"dataset": "folder", "split_sizes": {"test": 23}}')
    seen = []
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', lambda self, *a, **k: seen.append(
        (self.axes[0].get_title(), self.axes[0].get_ylabel(), len(self.axes[0].lines))))
    assert plot_runs.main([str(run / 'metrics.jsonl'), '-o', str(tmp_path / 'p.png')]) == 0
    assert seen == [('MobileNetV1 on folder', 'test accuracy (%), all 23 images', 1)]
    assert plot_runs.main([str(run / 'metrics.jsonl'), '-o', str(tmp_path / 'p.png'),
                           '--target', '90', '--title', 'mine']) == 0
    assert seen[-1] == ('mine', 'test accuracy (%), all 23 images', 2)  # the target's line too
