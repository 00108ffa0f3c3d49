"""Input pipelines: arrays held in memory (in_memory.py) and files or records streamed
(streamed.py); both seeded by (seed, epoch) so a resumed epoch continues exactly."""
