"""tf.distribute: several workers (TF_CONFIG) or one machine's GPUs."""
