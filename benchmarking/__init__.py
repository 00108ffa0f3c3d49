"""benchmark.py's measurements and the peers it measures against (Keras, PyTorch)."""
