"""Oracle modules, one per dialect: random cases, and how to run them in tconv and in the framework.

Each module ``tests/oracles/<dialect>.py`` defines

- ``DIALECT``: the dialect's name;
- ``random_case(rng) -> Case``: one random configuration (valid or not) from a
  ``numpy.random.Generator``; small arrays, never degenerate data;
- ``run_tconv(case) -> ndarray`` (raises ``TconvError`` where tconv refuses);
- ``run_framework(case) -> ndarray`` (raises whatever the framework raises), importing
  the framework lazily;
- ``FRAMEWORK``: the importable module name, so tests can skip where it is absent
  (never in CI: .ci/run sets TCONV_REQUIRE_ORACLES=1, which turns a skip into a failure).
"""
