"""Models, views and settings shared by ``benchmarks/upload.py`` and ``benchmarks/worker.py``."""
