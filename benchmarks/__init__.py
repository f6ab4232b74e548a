"""Benchmarks of django-delayed-attachments; run them as scripts, not in the test suite."""
