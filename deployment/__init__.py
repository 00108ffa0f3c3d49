"""A trained model in each of its forms (checkpoint, .pb, .tflite, OpenCV) behind one interface."""
