"""One training run: the plan resolved once, the graph, and the task-agnostic epoch loop."""
