"""Published MobileNetV1 weights brought in from where they are published (TF-Slim's archives,
TFLite files, Keras) as checkpoints under TF-Slim's names (import_weights.py)."""
