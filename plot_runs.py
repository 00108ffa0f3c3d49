"""Plot test accuracy against wall-clock minutes for runs' metrics logs.

    python3 plot_runs.py results/fast/metrics.jsonl results/cifar_15ep/metrics.jsonl -o results/accuracy_vs_time.png

Each run is labelled by its folder name; the x axis is `wall_seconds` (training,
evaluation and checkpointing, summed over resumes) where the log has it, else
`train_seconds`.
"""
import argparse
import json
import os
import sys


def read_metrics(path):
    """The epochs of a metrics.jsonl that have a test accuracy. A line cut short by a crash
    mid-write is skipped, as train.py skips it on resume."""
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                raise ValueError('line %d is not a metrics record' % number)
            if 'test_accuracy' in record:
                if 'wall_seconds' not in record and 'train_seconds' not in record:
                    raise ValueError('line %d has no wall_seconds or train_seconds' % number)
                for key in ('test_accuracy', 'test_accuracy_tta', 'wall_seconds', 'train_seconds'):
                    if key in record and not _is_number(record[key]):
                        raise ValueError('line %d: %s is %s, not a number'
                                         % (number, key, json.dumps(record[key])))
                records.append(record)
    return records


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('metrics', nargs='+', help='metrics.jsonl files written by train.py')
    parser.add_argument('-o', '--output', default='accuracy_vs_time.png',
                        help='PNG to write (default: %(default)s)')
    parser.add_argument('--title', default='MobileNetV1 on CIFAR-10 (JPEG copy), 2-core CPU',
                        help='plot title')
    args = parser.parse_args(argv)
    if not args.output.lower().endswith('.png'):
        parser.error('--output must name a .png file, got %r' % args.output)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        parser.error('--output %s: no folder %s' % (args.output, folder))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lowest = 100.0
    for path in args.metrics:
        try:
            records = read_metrics(path)
        except (OSError, ValueError) as e:
            print('plot_runs.py: error: %s: %s' % (path, e), file=sys.stderr)
            return 2
        if not records:
            print('plot_runs.py: error: %s: no epoch with a test accuracy' % path, file=sys.stderr)
            return 2
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
    ax.axhline(90.0, color='grey', linewidth=0.8, linestyle=':')
    ax.set_xlabel('wall-clock minutes')
    ax.set_ylabel('test accuracy (%), all 10,000 images')
    # From 50%, where the runs that matter are, unless a run is below it: it must show.
    ax.set_ylim(bottom=min(50.0, 5 * (lowest // 5)))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    ax.set_title(args.title)
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=120)
    except OSError as e:
        print('plot_runs.py: error: %s: cannot write (%s)' % (args.output, e.strerror or e),
              file=sys.stderr)
        return 2
    print('wrote %s' % args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
