"""Test-suite settings: hypothesis draws the same examples on every run, so that CI is
reproducible and a failure found once is found again."""

from hypothesis import settings

settings.register_profile("book", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("book")
