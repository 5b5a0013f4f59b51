"""The launcher: the ``coldchain`` command, the local stack and the supervisor of ``coldchain up``.

It sits at the top of the project: it imports every stage to start it, and nothing of the
project imports it (tests/test_layers.py checks both; the tests and the benchmarks may, to
start real PostgreSQL and Mosquitto instances).
"""
