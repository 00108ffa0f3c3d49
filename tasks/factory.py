"""The task --task names: the classifier ('classify') or the detector ('detect')."""
from preflight.errors import UsageError


def task(name):
    """The task module of `name` (tasks/classifier.py or tasks/detector.py)."""
    if name == 'classify':
        from tasks import classifier
        return classifier
    if name == 'detect':
        from tasks import detector
        return detector
    raise UsageError("--task must be 'classify' or 'detect', got %r" % name)
