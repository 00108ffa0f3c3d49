"""Finding, reading and restoring checkpoints, and the files a run keeps beside them."""
