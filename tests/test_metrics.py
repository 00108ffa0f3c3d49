"""Metrics for imbalanced classes: per-class precision/recall/F1, macro F1, top-k, class weights."""
import json

import numpy as np
import pytest

from datasets import decoding
from datasets import tfrecords
import evaluate
from tasks import classification_metrics
from training import run_data
import train
from conftest import own_images


def test_per_class_figures_from_a_known_confusion_matrix():
    labels = [0, 0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 1, 1, 1]
    matrix = classification_metrics.confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[2, 2, 0], [0, 2, 0], [0, 1, 0]]
    rows = classification_metrics.per_class(matrix, ['a', 'b', 'c'])
    assert rows[0] == dict(label='a', precision=1.0, recall=0.5, f1=0.6667, support=4)
    assert rows[1] == dict(label='b', precision=0.4, recall=1.0, f1=0.5714, support=2)
    # Never predicted, never right: zeros, not NaN.
    assert rows[2] == dict(label='c', precision=0.0, recall=0.0, f1=0.0, support=1)
    assert classification_metrics.macro_f1(matrix) == pytest.approx((2 / 3 + 4 / 7) / 3, abs=1e-4)


def test_top_k_counts_the_label_among_the_k_most_probable():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    labels = np.array([1, 2, 2])
    assert classification_metrics.top_k_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert classification_metrics.top_k_accuracy(probs, labels, 2) == pytest.approx(2 / 3)
    assert classification_metrics.top_k_accuracy(probs, labels, 3) == 1.0


def test_balanced_class_weights_make_every_class_weigh_the_same():
    data = dict(train_images=np.zeros((8, 32, 32, 3), np.uint8),
                train_labels=np.array([0, 0, 0, 0, 0, 0, 1, 1]))
    weights = run_data.balanced_class_weights(np.bincount(data['train_labels'], minlength=3))
    np.testing.assert_allclose(weights, [8 / 6 / 3, 8 / 2 / 3, 0.0])
    counts = np.bincount(data['train_labels'], minlength=3)
    np.testing.assert_allclose((weights * counts)[:2], [8 / 3, 8 / 3])


def test_training_reports_macro_f1_and_evaluate_the_per_class_table(capsys, tmp_path):
    photos = own_images(tmp_path / 'photos')
    ckpt = tmp_path / 'ckpt'
    assert train.main(['--dataset', 'folder', '--data_dir', str(photos), '--ckpt_dir', str(ckpt),
                       '--width', '0.25', '--batch_size', '8', '--eval_batch_size', '8',
                       '--epochs', '1', '--test_size', '6', '--class_weights', 'balanced']) == 0
    record = json.loads((ckpt / 'metrics.jsonl').read_text().splitlines()[-1])
    assert 0 <= record['test_macro_f1'] <= 1
    capsys.readouterr()
    # The run's own folder with --test_size 0 (not the run's 6): every image it holds.
    assert evaluate.main([str(ckpt), '--dataset', 'folder', '--data_dir', str(photos),
                          '--test_size', '0']) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result['split'] == 'train'  # a folder of class folders only: every image it holds
    assert [row['label'] for row in result['per_class']] == ['cat', 'dog', 'eel']
    assert sum(row['support'] for row in result['per_class']) == result['num_images'] == 24
    assert set(result['per_class'][0]) == {'label', 'precision', 'recall', 'f1', 'support'}
    assert result['top5_accuracy'] is None  # three classes: top-5 says nothing
    assert 0 <= result['macro_f1'] <= 1 and 'macro F1' in out


def test_evaluate_refuses_a_model_of_another_class_count(capsys, tiny_cifar, tmp_path):
    ckpt = tmp_path / 'ckpt'
    assert train.main(['--data_dir', str(tiny_cifar), '--ckpt_dir', str(ckpt), '--width', '0.25',
                       '--batch_size', '16', '--epochs', '1', '--steps_per_epoch', '1']) == 0
    photos = own_images(tmp_path / 'photos')
    capsys.readouterr()
    assert evaluate.main([str(ckpt), '--dataset', 'folder', '--data_dir', str(photos)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'has 10 classes but %s has 3' % photos in err[0]


def test_tfrecord_class_counts_are_read_from_the_records(tmp_path):
    photos = own_images(tmp_path / 'photos')
    tfrecords.convert(str(photos), str(tmp_path / 'rec'), 2, 'own')
    data = tfrecords.load_tfrecord(str(tmp_path / 'rec'))
    assert decoding.class_counts(data['train'], None, 3).tolist() == [8, 8, 8]
