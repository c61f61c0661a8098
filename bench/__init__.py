"""Province-scale benchmark kit (issue 5): ``python -m bench.run [--size full|small|tiny] [--pg URL]``."""
