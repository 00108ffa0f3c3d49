"""tf.distribute for train.py's graph: the strategy of the cluster TF_CONFIG names, the worker's
gRPC server, and a lost worker told apart from a slow one; without TF_CONFIG, the strategy of
one machine's GPUs; and the task's step replicated under either.

MultiWorkerMirroredStrategy in TF1 graph mode: each worker builds the same graph under the
strategy's scope, runs its replica of the step (strategy.extended.call_for_each_replica), and
the optimizer all-reduces (sums) the gradients; variables start from worker 0's values.
MirroredStrategy does the same between the GPUs of one process.
"""
import json
import time

import numpy as np
import tensorflow as tf

from checkpoints import reading
from pipelines import order
from preflight import cluster as cluster_lib
from preflight import errors

v1 = tf.compat.v1


# Errors of a step whose collective lost a peer: its connection refused or reset, or no
# answer before the session's deadline.
PEER_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError,
               tf.errors.AbortedError, tf.errors.CancelledError, tf.errors.InternalError,
               tf.errors.FailedPreconditionError)


def local_replicas():
    """The devices of one machine's replicas: its GPUs where it has two or more, else None (one
    GPU, or the CPU with its --towers, takes the whole step)."""
    count = len(tf.config.list_physical_devices('GPU'))
    return ['/gpu:%d' % i for i in range(count)] if count > 1 else None


def local_strategy(devices):
    """MirroredStrategy over `devices` (make it inside the training's graph)."""
    return v1.distribute.MirroredStrategy(devices)


def replicated_step(strategy, plan, task, images, labels, data, global_step, lr):
    """The task's step on each of this worker's replicas (one on a CPU), the gradients summed
    across the cluster; the loss and figures are the global batch's (an all-reduce of scalars)."""
    local = len(strategy.extended.worker_devices)
    share = plan['worker_batch']
    if share % local:
        raise errors.UsageError('--batch_size %d%s is not a multiple of the %d GPUs: each takes '
                                'an equal share' % (plan['batch_size'], ' (%d a worker)' % share
                                                    if plan['workers'] > 1 else '', local))
    made = []

    def step(images, labels):
        index = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        if local > 1:  # a worker's images are shared out between its GPUs as towers share a batch
            start, size = order.share(share, local, index % local)
            images, labels = images[start:start + size], labels[start:start + size]
        loss, figures, minimize, variables = task.step(
            plan, images, labels, data, global_step, lr,
            replica=(index, strategy.num_replicas_in_sync))
        made.append(variables)
        return loss, figures, minimize

    loss, figures, minimize = strategy.extended.call_for_each_replica(step, args=(images, labels))
    mean = tf.distribute.ReduceOp.MEAN
    return (strategy.reduce(mean, loss, axis=None),
            {key: strategy.reduce(mean, value, axis=None) for key, value in figures.items()},
            strategy.group(minimize), made[0])


# The bytes of the settings every worker must share, exchanged once before the first step.
SETTINGS_BYTES = 8192


def check_agreement(run, strategy, settings, cluster):
    """UsageError naming the first of `settings` ({flag: value}) that another worker of the
    `cluster` has otherwise: workers that train apart would drift, or one start anew. Every
    worker's settings are gathered (an all-gather of their bytes, added to the graph under the
    `strategy` before it is finalized); `run` is the session's run, guarded."""
    text = json.dumps(settings, sort_keys=True).encode('utf-8')
    if len(text) > SETTINGS_BYTES:
        raise errors.UsageError('the settings to check between workers take %d bytes, more than '
                                '%d' % (len(text), SETTINGS_BYTES))
    with strategy.scope():
        mine = v1.placeholder(tf.int32, [SETTINGS_BYTES], 'worker_settings')
        gathered = strategy.experimental_local_results(strategy.extended.call_for_each_replica(
            lambda: tf.distribute.get_replica_context().all_gather(mine[None], axis=0)))[0]
    codes = np.zeros(SETTINGS_BYTES, np.int32)
    codes[:len(text)] = np.frombuffer(text, np.uint8)
    # A row for each replica: the worker's GPUs, or its CPU.
    rows = run(gathered, {mine: codes})[::len(strategy.extended.worker_devices)]
    for index, row in enumerate(rows):
        theirs = json.loads(bytes(row[:np.count_nonzero(row)].astype(np.uint8)))
        for key in sorted(set(settings) | set(theirs)):
            if theirs.get(key) != settings.get(key):
                raise errors.UsageError(
                    '%s %s on this worker (%d), %s on worker %d (%s): every worker must train '
                    'with the same settings; start them all with the same flags' % (
                        _flag(key), json.dumps(settings.get(key)), cluster.index,
                        json.dumps(theirs.get(key)), index, cluster.workers[index]))


def _flag(key):
    """How check_agreement names a setting: a flag, or what the workers found (their data, the
    checkpoint they start from)."""
    return dict(start_step='the run starts at step', classes='the data\'s classes are').get(
        key, '--' + key)


class Worker:
    """This process's worker: its strategy (make it inside the training's graph), the gRPC
    server the others reach it on, and the session settings for both."""

    def __init__(self, cluster, config_proto, timeout):
        self.cluster, self.timeout = cluster, timeout
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({'worker': cluster.workers}), task_type='worker',
            task_id=cluster.index, rpc_layer='grpc')
        self.strategy = v1.distribute.experimental.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver)
        self.config = self.strategy.update_config_proto(config_proto)
        cluster_lib.check_port_free(cluster)
        self.server = tf.distribute.Server(resolver.cluster_spec(), job_name='worker',
                                           task_index=cluster.index, config=self.config,
                                           start=True)
        # A step waits for every worker: one gone would otherwise hold the others forever.
        self.run_options = v1.RunOptions(timeout_in_ms=int(timeout * 1000))

    @property
    def target(self):
        return self.server.target

    def wait_for_peers(self):
        """Returns once every other worker's server answers; LostWorker after the timeout. A
        worker's first step waits for the chief in TensorFlow's own retry loop, without end and
        deaf to Ctrl-C, when the chief never comes."""
        deadline = time.monotonic() + self.timeout
        waiting = dict(enumerate(self.cluster.workers))
        waiting.pop(self.cluster.index)
        while waiting:
            states = {i: cluster_lib.peer_state(address, seconds=1.0)
                      for i, address in waiting.items()}
            waiting = {i: waiting[i] for i, state in states.items() if state != 'answering'}
            if waiting and time.monotonic() > deadline:
                raise errors.LostWorker('%s did not join within --worker_timeout %g s (%s): start '
                                        'the same command there, with its own TF_CONFIG '
                                        'task.index' % (', '.join(
                                            'worker %d (%s)' % (i, address)
                                            for i, address in waiting.items()), self.timeout,
                                            ', '.join(sorted(set(states[i] for i in waiting)))),
                                        True)
            if waiting:
                time.sleep(0.5)

    def lost(self, error, starting):
        """The LostWorker to raise for a step's PEER_ERRORS `error`."""
        states = {'worker %d (%s)' % (i, address): cluster_lib.peer_state(address)
                  for i, address in enumerate(self.cluster.workers) if i != self.cluster.index}
        gone, stalled = ([who for who, state in states.items() if state == wanted]
                         for wanted in ('gone', 'stalled'))
        if gone:
            who = ', '.join(gone)
        elif stalled:
            who = '%s, stalled (its port takes connections, its server does not answer: a ' \
                  'stopped or frozen process; end it)' % ', '.join(stalled)
        else:
            who = 'a worker (every worker\'s server still answers: one has crashed or is slow ' \
                  'in its step; its log says which)'
        if starting:
            return errors.LostWorker('%s did not join within --worker_timeout %g s (%s): start the same '
                              'command there, with its own TF_CONFIG task.index'
                              % (who, self.timeout, _short(error)), True)
        return errors.LostWorker('lost %s (%s); the chief\'s checkpoints hold everything up to its '
                          'last save: run the same command on every worker to resume'
                          % (who, _short(error)), False)


def _short(error):
    return '%s: %s' % (type(error).__name__, reading.first_line(error)[:160])
