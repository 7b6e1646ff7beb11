"""One module per command of `python -m helpers`: `add_arguments(parser)` and `run(args) -> Report`."""
