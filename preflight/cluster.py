"""The cluster a training joins: TF_CONFIG read and checked, without TensorFlow.

train.py reads it before importing TensorFlow (the per-worker batch picks the CPU kernels and
towers), so that a bad TF_CONFIG is one line, not a traceback from deep in gRPC.
"""
import ipaddress
import json
import socket

from preflight.errors import UsageError


class Cluster:
    """This process's place in a cluster of `workers` ("host:port"), worker `index` of them."""

    def __init__(self, workers, index):
        self.workers, self.index = workers, index

    @property
    def size(self):
        return len(self.workers)

    @property
    def is_chief(self):
        # Worker 0 alone writes the run's files, as tf.distribute's multi-worker convention.
        return self.index == 0

    @property
    def address(self):
        return self.workers[self.index]


def from_environment(environ):
    """The Cluster of environ's TF_CONFIG; None without one (a single-machine run)."""
    text = environ.get('TF_CONFIG', '').strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise UsageError('TF_CONFIG is not JSON (%s); set it to {"cluster": {"worker": '
                         '["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
                         % e) from e
    if not isinstance(spec, dict) or not isinstance(spec.get('cluster'), dict):
        raise UsageError('TF_CONFIG has no "cluster" object; set it to {"cluster": {"worker": '
                         '[...]}, "task": {"type": "worker", "index": I}}')
    other_jobs = sorted(set(spec['cluster']) - {'worker'})
    if other_jobs:
        raise UsageError('TF_CONFIG names jobs %s: train.py trains data-parallel on "worker" '
                         'tasks only (all-reduce, no parameter servers); list every machine '
                         'under "worker"' % ', '.join(map(repr, other_jobs)))
    workers = spec['cluster'].get('worker')
    if not isinstance(workers, list) or not workers or not all(
            isinstance(w, str) and _port(w) is not None for w in workers):
        raise UsageError('TF_CONFIG cluster.worker is %s, not a list of "host:port" addresses'
                         % json.dumps(workers))
    if len(set(workers)) != len(workers):
        raise UsageError('TF_CONFIG cluster.worker lists an address twice: %s'
                         % ', '.join(workers))
    machines = [_machine(w) if [_port(v) for v in workers].count(_port(w)) > 1 else set()
                for w in workers]
    for i, first in enumerate(workers):
        for j, second in enumerate(workers[i + 1:], i + 1):
            if _port(first) == _port(second) and machines[i] & machines[j]:
                raise UsageError('TF_CONFIG cluster.worker lists one worker twice: %s and %s are '
                                 'the same machine and port; give each worker its own'
                                 % (first, second))
    task = spec.get('task')
    if not isinstance(task, dict) or task.get('type', 'worker') != 'worker':
        raise UsageError('TF_CONFIG task is %s; set it to {"type": "worker", "index": I}, I from '
                         '0 to %d, a different one on each machine' % (json.dumps(task),
                                                                      len(workers) - 1))
    index = task.get('index')
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise UsageError('TF_CONFIG task.index is %s; it must be from 0 to %d (cluster.worker '
                         'lists %d machines)' % (json.dumps(index), len(workers) - 1, len(workers)))
    return Cluster(workers, index)


def check_port_free(cluster):
    """UsageError if this worker's port is taken (another training, another program)."""
    port = _port(cluster.address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gRPC binds: a port the last run's connections linger on (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(('', port))
        except OSError as e:
            raise UsageError('TF_CONFIG worker %d is %s, but port %d is in use here (%s); pick a '
                             'free port for it in every worker\'s TF_CONFIG'
                             % (cluster.index, cluster.address, port, e.strerror)) from e

# A client's HTTP/2 connection preface and an empty SETTINGS frame: a gRPC server answers them
# with its own SETTINGS frame at once, from threads of its own, however busy its training is.
_HTTP2_HELLO = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + b'\x00\x00\x00\x04\x00\x00\x00\x00\x00'


def peer_state(address, seconds=3.0):
    """'gone' (nothing accepts connections at "host:port": a dead worker's port refuses),
    'stalled' (the kernel accepts, the server does not answer: a stopped or frozen process) or
    'answering'."""
    host, port = address.rsplit(':', 1)
    try:
        connection = socket.create_connection((host.strip('[]'), int(port)), timeout=seconds)
    except OSError:
        return 'gone'
    with connection:
        try:
            connection.sendall(_HTTP2_HELLO)
            return 'answering' if connection.recv(9) else 'gone'
        except socket.timeout:
            return 'stalled'
        except OSError:
            return 'gone'


def _machine(address):
    """The addresses a "host:port" names: its host resolved ('loopback' for every name and
    address of this machine's loopback), or the name itself where it does not resolve."""
    host = address.rpartition(':')[0].strip('[]')
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        found = {host.lower()}
    machine = set()
    for name in found:
        try:
            machine.add('loopback' if ipaddress.ip_address(name).is_loopback else name)
        except ValueError:
            machine.add(name)
    return machine


def _port(address):
    host, _, port = address.rpartition(':')
    return int(port) if host and port.isdigit() and 0 < int(port) < 65536 else None
