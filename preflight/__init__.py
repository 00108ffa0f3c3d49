"""What runs before TensorFlow is imported, and imports none of it: the project's exceptions,
flags, the CPU kernel choice, the cluster TF_CONFIG names, all-or-nothing file writing."""
