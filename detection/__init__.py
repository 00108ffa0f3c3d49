"""The detector on MobileNetV1's backbone: YOLOv3's head, anchors, loss, box decoding with
non-max suppression, and average precision."""
