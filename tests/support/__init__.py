"""Helpers shared by the tests and the benchmarks: imported as ``tests.support.<module>``
(pytest puts the checkout's root on the path through ``pythonpath`` in pyproject.toml; bench/
scripts put the root there themselves). Fixtures live in the conftest.py files instead."""
