"""Plot test accuracy against wall-clock minutes for runs' metrics logs.

    python3 plot_runs.py results/fast/metrics.jsonl results/cifar_15ep/metrics.jsonl -o results/accuracy_vs_time.png

Each run is labelled by its folder name; the x axis is `wall_seconds` (training,
evaluation and checkpointing, summed over resumes) where the log has it, else
`train_seconds`. The title and the test set's size come from the config.json
beside each log where there is one (a run's own folder).
"""
import json
import math
import os
import sys

from preflight import command_line
from preflight import errors


def read_metrics(path):
    """The epochs of a metrics.jsonl that have a test accuracy. The last line cut short by a
    crash mid-write is skipped, as train.py skips it on resume; any other line that does not
    parse is damage, named."""
    records = []
    with open(path) as f:
        lines = f.readlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines) and not line.endswith('\n'):
                continue
            raise ValueError('line %d is not a JSON metrics record: %r' % (
                number, line[:60])) from None
        if not isinstance(record, dict):
            raise ValueError('line %d is not a metrics record' % number)
        if 'test_accuracy' in record:
            if 'wall_seconds' not in record and 'train_seconds' not in record:
                raise ValueError('line %d has no wall_seconds or train_seconds' % number)
            for key in ('test_accuracy', 'test_accuracy_tta', 'wall_seconds', 'train_seconds'):
                if key in record and not _is_number(record[key]):
                    raise ValueError('line %d: %s is %s, not a %snumber' % (
                        number, key, json.dumps(record[key]),
                        'finite ' if isinstance(record[key], float) else ''))
            records.append(record)
    return records


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def run_facts(path):
    """(dataset, test images) of the run whose metrics.jsonl is `path`, from the config.json
    beside it; (None, None) where there is none or it does not say."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(path)), 'config.json')) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None, None
    if not isinstance(saved, dict):
        return None, None
    sizes = saved.get('split_sizes')
    test = sizes.get('test') if isinstance(sizes, dict) else None
    return saved.get('dataset'), test if _is_number(test) else None


def main(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('metrics', nargs='+', help='metrics.jsonl files written by train.py')
    parser.add_argument('-o', '--output', default='accuracy_vs_time.png',
                        help='PNG to write (default: %(default)s)')
    parser.add_argument('--title', default=None,
                        help="plot title (default: the runs' datasets, from their config.json)")
    parser.add_argument('--target', type=float, default=None, metavar='PERCENT',
                        help='also draw a dotted line at this test accuracy (default: none)')
    args = parser.parse_args(argv)
    if not args.output.lower().endswith('.png'):
        parser.error('--output must name a .png file, got %r' % args.output)
    if args.target is not None and not math.isfinite(args.target):
        parser.error('--target must be a finite percentage, got %r' % args.target)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        parser.error('--output %s: no folder %s' % (args.output, folder))
    return errors.run_program('plot_runs.py', lambda: plot(args))


def plot(args):
    runs = []
    for path in args.metrics:
        try:
            records = read_metrics(path)
        except (OSError, ValueError) as e:
            raise errors.DataError('%s: %s' % (path, e)) from e
        if not records:
            raise errors.DataError('%s: no epoch with a test accuracy' % path)
        runs.append((path, records) + run_facts(path))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lowest = 100.0
    for path, records, _, _ in runs:
        label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        minutes = [(r['wall_seconds'] if 'wall_seconds' in r else r['train_seconds']) / 60
                   for r in records]
        accuracies = [100 * r['test_accuracy'] for r in records]
        lowest = min([lowest] + accuracies)
        line, = ax.plot(minutes, accuracies, marker='.', label=label)
        if 'test_accuracy_tta' in records[-1]:
            # The run's own colour, dashed: a TTA line taking the next colour would leave
            # ten colours for five runs and repeat them beyond that.
            ax.plot(minutes, [100 * r['test_accuracy_tta'] for r in records], linestyle='--',
                    color=line.get_color(), label=label + ' (flip TTA)')
    if args.target is not None:
        ax.axhline(args.target, color='grey', linewidth=0.8, linestyle=':')
    datasets = sorted({dataset for _, _, dataset, _ in runs if dataset})
    tests = {test for _, _, _, test in runs}
    ax.set_xlabel('wall-clock minutes')
    ax.set_ylabel('test accuracy (%%)%s' % (', all %s images' % format(tests.pop(), ',')
                                           if len(tests) == 1 and None not in tests else ''))
    # From 50%, where the runs that matter are, unless a run is below it: it must show.
    ax.set_ylim(bottom=min(50.0, 5 * (lowest // 5)))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    ax.set_title(args.title or 'MobileNetV1%s' % (' on ' + ', '.join(datasets) if datasets else ''))
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=120)
    except OSError as e:
        raise errors.UsageError('%s: cannot write (%s)' % (args.output, e.strerror or e)) from e
    print('wrote %s' % args.output)

if __name__ == '__main__':
    sys.exit(main())
