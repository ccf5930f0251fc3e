"""Coverage-guided fuzzing of the text-spec parser and its views with atheris (not run in CI).

    pip install atheris
    python fuzz/fuzz_parse.py -atheris_runs=200000            # the parser alone
    TCONV_FUZZ_TARGET=explain python fuzz/fuzz_parse.py -max_total_time=600

Each input is decoded as text and handed to :func:`tconv.parse` (and, with
``TCONV_FUZZ_TARGET=explain``, to :func:`tconv.explain` on a small input shape). The
rule is the one of tests/test_fuzz.py: a result or a TconvError; anything else is a
crash that atheris reports with the input that caused it. Seeds: fuzz/corpus/.
"""

import os
import signal
import sys

import atheris

import tconv
import tconv.explain
import tconv.translation
from tconv import budget
from tconv.errors import TconvError
from tconv.spec import parse

atheris.instrument_all()  # every Python function loaded so far: tconv's modules included

TARGET = os.environ.get("TCONV_FUZZ_TARGET", "parse")
budget.set_memory_budget(256 << 20)


def _alarm(signum, frame):
    raise RuntimeError("hang: no answer within 10 s")


signal.signal(signal.SIGALRM, _alarm)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    signal.alarm(10)
    try:
        spec = parse(text)
        if TARGET == "explain":
            tconv.explain(spec, (1, 4, 8, 8) if spec.framework in ("torch", "onnx") else (1, 8, 8, 4))
    except TconvError:
        pass
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
