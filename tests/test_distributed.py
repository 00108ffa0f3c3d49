"""Data-parallel training on tf.distribute: two workers as local processes on loopback ports."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from checkpoints import reading
from datasets import tfrecords
from preflight import errors
from preflight import cluster

import train
from distribution import strategies
from training import optimization
from conftest import own_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ['--width', '0.25', '--batch_size', '16', '--batch_norm_decay', '0.8', '--eval_batch_size',
       '40', '--steps_per_epoch', '3', '--dropout_keep_prob', '0.5', '--lr', '0.02',
       '--weight_decay', '0']
# Weight decay off: its term joins the gradient sum in another order on two workers than in
# two towers, and this tiny network at batch 8 amplifies round-off (a change of --weight_decay
# by 2e-5 of itself moved weights by 0.014 in 6 steps). Without it the sums are the same.


# train.py, with the trainable weights' digest written after every training step: the test's
# window on whether the workers stay identical.
WORKER = '''
import hashlib, json, os, sys
import tensorflow as tf
import train
from training import train_graph, trainer
build, guarded, weights, digests = train_graph.build_graph, trainer.guarded, [], []
def build_graph(*args, **kwargs):
    g = build(*args, **kwargs)
    # Moving statistics are each replica's own (per-replica batch norm); the rest is shared.
    weights.extend(tf.identity(v) for v in tf.compat.v1.trainable_variables()
                   if 'moving_' not in v.op.name)
    return g
def record(sess, worker, fetches, feed_dict=None, starting=False):
    values = guarded(sess, worker, fetches, feed_dict, starting)
    if isinstance(fetches, list) and len(fetches) == 4:  # the training step
        digests.append(hashlib.md5(b''.join(w.tobytes() for w in sess.run(weights))).hexdigest())
        with open(os.environ['DIGESTS'], 'w') as f:
            json.dump(digests, f)
    return values
train_graph.build_graph, trainer.guarded = build_graph, record
sys.exit(train.main(sys.argv[1:]))
'''


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(('localhost', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(workers, index):
    return json.dumps({'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}})


def start_workers(tmp_path, argv, ports=None, only=None):
    ports = ports or free_ports(2)
    workers = ['localhost:%d' % p for p in ports]
    processes = []
    for index in range(len(workers)) if only is None else [only]:
        env = dict(os.environ, TF_CONFIG=tf_config(workers, index),
                   DIGESTS=str(tmp_path / ('digests%d.json' % index)))
        log = open(tmp_path / ('worker%d.log' % index), 'w')
        processes.append(subprocess.Popen([sys.executable, '-c', WORKER] + argv, cwd=REPO,
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes, ports


def finish(processes, timeout=240):
    deadline = time.time() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(max(1, deadline - time.time())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append('hung')
    return codes


def log(tmp_path, index):
    return (tmp_path / ('worker%d.log' % index)).read_text()


def epochs_in(run):
    return [(r['epoch'], r['step']) for r in
            map(json.loads, (run / 'metrics.jsonl').read_text().splitlines())]


def weights(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith('MobilenetV1/') and not name.endswith(('Momentum', 'moving_mean',
                                                                      'moving_variance'))}


def test_two_workers_step_as_one_process_of_two_towers(capsys, tiny_cifar, tmp_path):
    # Both start from the same weights: random initialisation differs from graph to graph.
    start = tmp_path / 'start'
    assert train.main(RUN[:-4] + ['--epochs', '1', '--steps_per_epoch', '1', '--data_dir',
                                  str(tiny_cifar), '--ckpt_dir', str(start)]) == 0
    run = tmp_path / 'run'
    argv = RUN + ['--epochs', '2', '--load_pretrain', '1', '--pretrain_path', str(start),
                  '--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]
    processes, ports = start_workers(tmp_path, argv)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:] + log(tmp_path, 1)[-3000:]
    # Identical after every step, all-reduced gradients and all.
    steps = [json.loads((tmp_path / ('digests%d.json' % i)).read_text()) for i in (0, 1)]
    assert len(steps[0]) == 6 and steps[0] == steps[1]
    assert 'Worker 1 of 2 (localhost:%d): 8 images of each batch of 16' % ports[1] in log(tmp_path, 1)
    # The chief alone wrote: one line an epoch, one events file, the files of one process.
    assert epochs_in(run) == [(1, 3), (2, 6)]
    files = sorted(os.listdir(run))
    assert len([f for f in files if f.startswith('events.')]) == 1
    assert [f for f in files if not f.startswith('events.')] == [
        'best', 'checkpoint', 'config.json', 'metrics.jsonl', 'model.ckpt-3.data-00000-of-00001',
        'model.ckpt-3.index', 'model.ckpt-6.data-00000-of-00001', 'model.ckpt-6.index',
        'train.lock']
    assert json.loads((run / 'config.json').read_text())['workers'] == 2

    # One process, the same global batch in two towers (per-tower batch norm, as per-replica).
    single = tmp_path / 'single'
    assert train.main(argv[:-2] + ['--towers', '2', '--ckpt_dir', str(single)]) == 0
    ours, theirs = weights(run / 'model.ckpt-6'), weights(single / 'model.ckpt-6')
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)

    # Restarted with more epochs, the pair resumes from the chief's checkpoint.
    processes, _ = start_workers(tmp_path, [a if a != '2' else '3' for a in argv], ports)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:]
    for index in (0, 1):
        assert 'Resuming from %s' % (run / 'model.ckpt-6') in log(tmp_path, index)
    assert epochs_in(run) == [(1, 3), (2, 6), (3, 9)]


def test_two_detector_workers_step_in_lockstep_and_the_chief_alone_writes(tmp_path):
    from tests import detection_data
    detection_data.write_voc(str(tmp_path / 'voc'), count=12)
    run = tmp_path / 'run'
    # The head alone in epoch 1, then every layer: both phases all-reduce the same gradients.
    argv = ['--task', 'detect', '--width', '0.25', '--image_size', '64', '--head', 'lite',
            '--head_depth', '16', '--batch_size', '4', '--eval_batch_size', '4', '--epochs', '2',
            '--steps_per_epoch', '2', '--freeze_backbone_epochs', '1', '--freeze_batch_norm', '0',
            '--warmup_epochs', '0', '--eval_every', '1', '--max_boxes', '4',
            '--data_dir', str(tmp_path / 'voc'), '--ckpt_dir', str(run)]
    processes, ports = start_workers(tmp_path, argv)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:] + log(tmp_path, 1)[-3000:]
    steps = [json.loads((tmp_path / ('digests%d.json' % i)).read_text()) for i in (0, 1)]
    assert len(steps[0]) == 4 and steps[0] == steps[1] and len(set(steps[0])) == 4
    assert 'Worker 1 of 2 (localhost:%d): 2 images of each batch of 4' % ports[1] in log(tmp_path, 1)
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [(r['epoch'], r['step']) for r in records] == [(1, 2), (2, 4)]
    assert all(0 <= r['test_mAP50'] <= 1 for r in records)
    files = os.listdir(run)
    assert len([f for f in files if f.startswith('events.')]) == 1
    assert json.loads((run / 'config.json').read_text())['workers'] == 2


def pair_in_epoch_2(tiny_cifar, tmp_path):
    """(run, argv, processes, ports) of two workers a second into epoch 2 of 200 steps each,
    past epoch 1's checkpoint."""
    run = tmp_path / 'run'
    # Epochs long enough (several seconds on any kernels) that the signal lands inside one.
    argv = RUN[:-4] + ['--steps_per_epoch', '200', '--epochs', '2', '--worker_timeout', '15',
                       '--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]
    processes, ports = start_workers(tmp_path, argv)
    deadline = time.time() + 180
    while time.time() < deadline and not (run / 'model.ckpt-200.index').exists():
        time.sleep(0.2)
    time.sleep(1.0)
    return run, argv, processes, ports


def test_a_killed_worker_stops_the_other_and_the_pair_resumes(tiny_cifar, tmp_path):
    run, argv, processes, ports = pair_in_epoch_2(tiny_cifar, tmp_path)
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    assert finish(processes) == [1, -9], log(tmp_path, 0)[-3000:]
    assert time.time() - killed_at < 15 + 60
    lines = [line for line in log(tmp_path, 0).splitlines() if 'train.py: error:' in line]
    assert lines[-1].startswith('train.py: error: lost worker 1 (localhost:%d) (' % ports[1])
    assert lines[-1].endswith('run the same command on every worker to resume')
    assert epochs_in(run) == [(1, 200)]

    processes, _ = start_workers(tmp_path, argv, ports)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:]
    assert epochs_in(run) == [(1, 200), (2, 400)]


def test_a_stalled_worker_is_named_as_stalled(tiny_cifar, tmp_path):
    run, argv, processes, ports = pair_in_epoch_2(tiny_cifar, tmp_path)
    processes[1].send_signal(signal.SIGSTOP)  # alive, its port open, its server silent
    stopped_at = time.time()
    try:
        assert finish(processes[:1]) == [1], log(tmp_path, 0)[-3000:]
        assert time.time() - stopped_at < 15 + 60
    finally:
        processes[1].kill()
    lines = [line for line in log(tmp_path, 0).splitlines() if 'train.py: error:' in line]
    assert lines[-1].startswith('train.py: error: lost worker 1 (localhost:%d), stalled (its port '
                                'takes connections, its server does not answer' % ports[1])
    assert epochs_in(run) == [(1, 200)]


@pytest.mark.parametrize('value,says', [
    ('{"cluster": ', 'TF_CONFIG is not JSON ('),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     'TF_CONFIG task.index is 2; it must be from 0 to 1 (cluster.worker lists 2 machines)'),
    ('{"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"index": 0}}',
     'TF_CONFIG names jobs \'ps\': train.py trains data-parallel on "worker" tasks only'),
    ('{"cluster": {"worker": ["a"]}, "task": {"index": 0}}',
     'TF_CONFIG cluster.worker is ["a"], not a list of "host:port" addresses'),
])
def test_a_bad_tf_config_is_one_line(capsys, monkeypatch, value, says):
    monkeypatch.setenv('TF_CONFIG', value)
    assert train.main(['--ckpt_dir', 'never']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('train.py: error: ' + says), err
    assert not os.path.exists('never')


def test_a_port_in_use_is_one_line(capsys, tiny_cifar, tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(('', 0))
        taken.listen()
        port = taken.getsockname()[1]
        workers = ['localhost:%d' % port, 'localhost:%d' % free_ports(1)[0]]
        with pytest.raises(errors.UsageError) as raised:
            cluster.check_port_free(cluster.Cluster(workers, 0))
    assert str(raised.value).startswith('TF_CONFIG worker 0 is localhost:%d, but port %d is in '
                                        'use here (' % (port, port))


@pytest.mark.parametrize('alone', [0, 1])  # the chief alone; a worker whose chief never comes
def test_a_peer_that_never_starts_is_one_line_within_the_timeout(tiny_cifar, tmp_path, alone):
    run = tmp_path / 'run'
    argv = RUN + ['--epochs', '1', '--worker_timeout', '5', '--data_dir', str(tiny_cifar),
                  '--ckpt_dir', str(run)]
    processes, ports = start_workers(tmp_path, argv, only=alone)
    assert finish(processes, timeout=120) == [2], log(tmp_path, alone)[-3000:]
    err = [line for line in log(tmp_path, alone).splitlines()
           if line.startswith('train.py: error')]
    assert len(err) == 1 and err[0].startswith(
        'train.py: error: worker %d (localhost:%d) did not join within --worker_timeout 5 s ('
        % (1 - alone, ports[1 - alone])), err
    assert not run.exists()  # a run refused at its start leaves no folder it made


def test_the_chief_stopped_mid_epoch_saves_and_the_pair_resumes_there(tiny_cifar, tmp_path):
    run, argv, processes, ports = pair_in_epoch_2(tiny_cifar, tmp_path)
    processes[0].send_signal(signal.SIGTERM)  # a scheduler preempting the chief mid-epoch 2
    assert finish(processes) == [143, 1], log(tmp_path, 1)[-3000:]
    saved = reading.newest_intact(str(run), say=False)[0]
    step = int(saved.rsplit('-', 1)[1])
    assert 200 < step < 400
    lines = [line for line in log(tmp_path, 1).splitlines() if 'error' in line]
    assert lines[-1].startswith('train.py: error: lost worker 0 (localhost:%d) (' % ports[0])

    processes, _ = start_workers(tmp_path, argv, ports)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:]
    assert 'Resuming from %s' % saved in log(tmp_path, 1)
    assert epochs_in(run) == [(1, 200), (2, 400)]


def test_two_workers_read_their_own_tfrecord_shards_in_lockstep(tmp_path):
    # 24 images in 4 shards of 6; each worker reads 2 of them, 2 images a step: 6 steps an epoch.
    written, _ = tfrecords.convert(str(own_images(tmp_path / 'own')),
                                             str(tmp_path / 'rec'), shards=4, name='own')
    assert written == dict(train=24)
    run = tmp_path / 'run'
    argv = ['--dataset', 'tfrecord', '--data_dir', str(tmp_path / 'rec'), '--image_size', '40',
            '--width', '0.25', '--batch_size', '4', '--eval_batch_size', '8', '--lr', '0.02',
            '--epochs', '2', '--ckpt_dir', str(run)]
    processes, _ = start_workers(tmp_path, argv)
    assert finish(processes) == [0, 0], log(tmp_path, 0)[-3000:] + log(tmp_path, 1)[-3000:]
    for index in (0, 1):
        assert 'Data: reads 2 of the 4 TFRecord shards (12 records), sharded by file' in log(
            tmp_path, index)
    steps = [json.loads((tmp_path / ('digests%d.json' % i)).read_text()) for i in (0, 1)]
    assert len(steps[0]) == 12 and steps[0] == steps[1]
    assert epochs_in(run) == [(1, 6), (2, 12)]


def test_replicas_of_one_machine_step_as_one_process_of_two_towers(capsys, tiny_cifar, tmp_path,
                                                                    monkeypatch):
    # Two GPUs, as MirroredStrategy sees them, played by two CPU devices of one session.
    start = tmp_path / 'start'
    assert train.main(RUN[:-4] + ['--epochs', '1', '--steps_per_epoch', '1', '--data_dir',
                                  str(tiny_cifar), '--ckpt_dir', str(start)]) == 0
    argv = RUN + ['--epochs', '2', '--load_pretrain', '1', '--pretrain_path', str(start),
                  '--data_dir', str(tiny_cifar)]
    single = tmp_path / 'single'
    assert train.main(argv + ['--towers', '2', '--ckpt_dir', str(single)]) == 0
    session_config = optimization.session_config

    def two_cpus(cfg):
        config_proto = session_config(cfg)
        config_proto.device_count['CPU'] = 2
        return config_proto

    monkeypatch.setattr(strategies, 'local_replicas', lambda: ['/cpu:0', '/cpu:1'])
    monkeypatch.setattr(optimization, 'session_config', two_cpus)
    run = tmp_path / 'run'
    assert train.main(argv + ['--towers', '1', '--ckpt_dir', str(run)]) == 0
    assert ('Replicas: 2 devices (/cpu:0, /cpu:1), 8 images each of every batch of 16'
            in capsys.readouterr().out)
    assert epochs_in(run) == [(1, 3), (2, 6)]
    ours, theirs = weights(run / 'model.ckpt-6'), weights(single / 'model.ckpt-6')
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # Resumed: each replica's variables from the one checkpoint.
    assert train.main([a if a != '2' else '3' for a in argv] + ['--towers', '1', '--ckpt_dir',
                                                                str(run)]) == 0
    assert epochs_in(run) == [(1, 3), (2, 6), (3, 9)]


def test_a_batch_larger_than_a_workers_shards_is_one_line(capsys, tmp_path, monkeypatch):
    # 3 shards of 8 records: worker 1 reads one, 8 records, fewer than its 10 images a step.
    tfrecords.convert(str(own_images(tmp_path / 'own')), str(tmp_path / 'rec'),
                                shards=3, name='own')
    monkeypatch.setenv('TF_CONFIG', tf_config(['localhost:%d' % p for p in free_ports(2)], 1))
    capsys.readouterr()
    assert train.main(['--dataset', 'tfrecord', '--data_dir', str(tmp_path / 'rec'),
                       '--image_size', '40', '--batch_size', '20',
                       '--ckpt_dir', str(tmp_path / 'run')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['train.py: error: --batch_size 20 gives each of the 2 workers 10 images a step, '
                   'more than the 8 records of the smallest worker\'s TFRecord shards; pass '
                   '--batch_size 16 or less']


@pytest.mark.parametrize('case', ['lr', 'resume'])
def test_workers_that_disagree_stop_before_the_first_step(tiny_cifar, tmp_path, case):
    run = tmp_path / 'run'
    argv = RUN + ['--epochs', '1', '--data_dir', str(tiny_cifar), '--ckpt_dir', str(run)]
    if case == 'resume':
        # The chief's folder holds a checkpoint; worker 1 is pointed at an empty one.
        assert train.main(argv) == 0
        other = argv[:-1] + [str(tmp_path / 'elsewhere')]
        argv = argv[:argv.index('--epochs') + 1] + ['2'] + argv[argv.index('--epochs') + 2:]
        other = other[:other.index('--epochs') + 1] + ['2'] + other[other.index('--epochs') + 2:]
        expected = 'the run starts at step 3 on this worker (0), 0 on worker 1'
    else:
        other = argv + ['--lr', '0.5']
        expected = '--lr 0.02 on this worker (0), 0.5 on worker 1'
    first, ports = start_workers(tmp_path, argv, only=0)
    second, _ = start_workers(tmp_path, other, ports=ports, only=1)
    assert finish(first + second) == [2, 2], log(tmp_path, 0)[-2000:] + log(tmp_path, 1)[-2000:]
    lines = [line for line in log(tmp_path, 0).splitlines() if 'train.py: error:' in line]
    assert len(lines) == 1 and expected in lines[0], lines
    assert 'every worker must train with the same settings' in lines[0]
    # Nothing written: no step was taken, no config.json of the disagreeing run.
    if case == 'lr':
        assert not run.exists() or not os.listdir(run)
    else:
        assert epochs_in(run) == [(1, 3)]
