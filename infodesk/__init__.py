"""The composition root: the only place that names the kernel, the workflows and the schedulers
together (the app factory, the command line and the demo)."""
