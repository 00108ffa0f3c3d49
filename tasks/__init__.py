"""What a task supplies to the training loop: its data, head and loss, metrics and export."""
