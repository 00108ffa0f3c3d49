"""Datasets by name (factory.py): CIFAR-10 (../data_utils.py), folders of class folders,
TF-Slim's TFRecords; decoding that skips and names bad images."""
