"""Damaged Keras weights files against tconv's ``.weights.h5`` reader (not run in CI).

    python fuzz/fuzz_h5.py ROUNDS SEED [source.weights.h5 ...]

Each round takes a source file (one tconv writes for a small model, the files in
``fuzz/crashes/`` and any given on the command line, such as one Keras wrote for the same
model), damages it (1 to 8 flipped bits, half of the time within the first 6 KiB where
HDF5 keeps most of its metadata; an overwritten run of bytes; or a truncation) and loads it
with ``Model.load_weights`` under a 256 MiB memory budget. The rule is the one of
tests/test_fuzz.py: loaded or a ``TconvError``.

HDF5 runs in C, where no Python signal reaches, so a hang is caught by :mod:`faulthandler`:
after 30 s the process prints where it was and exits with status 1; the file under test is
then ``current.weights.h5`` in the output directory (``$TCONV_FUZZ_OUT``, default
``fuzz-h5-out``). Files that raised another exception or took over 5 s are copied there too.
"""

import collections
import faulthandler
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from tconv import budget, nn
from tconv.errors import TconvError

HERE = Path(__file__).resolve().parent


def model() -> nn.Model:
    """The model of tests/test_fuzz.py's ``weight_files`` fixture."""
    inp = nn.Input((None, None, 2))
    h = nn.Conv2D(3, 3, padding="same", name="c1")(inp)
    return nn.Model(inp, nn.Conv2DTranspose(2, 3, strides=2, padding="same", name="t1")(h))


def damage(rng: np.random.Generator, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.integers(4)
    if kind <= 1:
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(min(len(b), 6144) if rng.integers(2) else len(b))
            b[i] ^= 1 << rng.integers(8)
    elif kind == 2:
        i = rng.integers(len(b))
        junk = rng.integers(0, 256, rng.integers(1, 65), dtype=np.uint8).tobytes()
        b[i:i + len(junk)] = junk
    else:
        b = b[: rng.integers(len(b))]
    return bytes(b)


def main(argv: list[str]) -> int:
    rounds, seed = int(argv[0]), int(argv[1])
    out_dir = Path(os.environ.get("TCONV_FUZZ_OUT", "fuzz-h5-out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    m = model()
    own = out_dir / "source.weights.h5"
    m.save_weights(own)
    sources = [own.read_bytes()] + [p.read_bytes() for p in sorted((HERE / "crashes").glob("*.weights.h5"))]
    sources += [Path(p).read_bytes() for p in argv[2:]]
    rng = np.random.default_rng(seed)
    current = out_dir / "current.weights.h5"
    outcomes: collections.Counter = collections.Counter()
    for k in range(rounds):
        current.write_bytes(damage(rng, sources[rng.integers(len(sources))]))
        faulthandler.dump_traceback_later(30, exit=True)
        start = time.perf_counter()
        try:
            with budget.memory_budget(256 << 20):
                m.load_weights(current)
            outcomes["loaded"] += 1
        except TconvError:
            outcomes["refused"] += 1
        except Exception as exc:  # the rule broken: keep the file
            outcomes[f"{type(exc).__name__}"] += 1
            shutil.copy(current, out_dir / f"error_{seed}_{k}.weights.h5")
            print(f"round {k}: {type(exc).__name__}: {exc}", *traceback.format_exc().splitlines()[-3:],
                  sep="\n  ", flush=True)
        faulthandler.cancel_dump_traceback_later()
        if time.perf_counter() - start > 5:
            outcomes["slow"] += 1
            shutil.copy(current, out_dir / f"slow_{seed}_{k}.weights.h5")
    print(f"{rounds} rounds, seed {seed}: {dict(outcomes)}")
    return 0 if set(outcomes) <= {"loaded", "refused"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
