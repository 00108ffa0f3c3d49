"""Classification metrics that stay honest on imbalanced classes, from a confusion matrix.

Rows are true classes, columns predicted ones. Precision, recall and F1 of a class with no
predictions or no images are 0 (scikit-learn's zero_division=0); macro F1 is the plain mean
over the classes that have images or predictions (as scikit-learn's f1_score averages over
the labels present), so a rare class weighs as much as a common one.
"""
import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def _scores(matrix):
    """(precision, recall, f1, support, predicted) arrays, one entry per class."""
    matrix = np.asarray(matrix, np.float64)
    hits = matrix.diagonal()
    predicted, support = matrix.sum(0), matrix.sum(1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1, support, predicted


def per_class(matrix, names):
    """[{'label', 'precision', 'recall', 'f1', 'support'}] for each class, in label order."""
    precision, recall, f1, support, _ = _scores(matrix)
    return [dict(label=name, precision=round(float(p), 4), recall=round(float(r), 4),
                 f1=round(float(f), 4), support=int(s))
            for name, p, r, f, s in zip(names, precision, recall, f1, support)]


def macro_f1(matrix):
    _, _, f1, support, predicted = _scores(matrix)
    present = (support > 0) | (predicted > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def top_k_accuracy(probabilities, labels, k):
    """The share of images whose label is among the k most probable classes."""
    top = np.argsort(-np.asarray(probabilities), axis=1, kind='stable')[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def format_table(matrix, rows):
    """Per-class precision, recall, F1 and support, then the confusion matrix."""
    width = max(max(len(str(r['label'])) for r in rows), len('class'))
    lines = ['%-*s  %9s %7s %7s %8s   %s' % (
        width, 'class', 'precision', 'recall', 'f1', 'support',
        ' '.join('%5s' % str(r['label'])[:5] for r in rows))]
    for row, counts in zip(rows, np.asarray(matrix)):
        lines.append('%-*s  %9.4f %7.4f %7.4f %8d   %s' % (
            width, row['label'], row['precision'], row['recall'], row['f1'], row['support'],
            ' '.join('%5d' % v for v in counts)))
    return '\n'.join(lines)
