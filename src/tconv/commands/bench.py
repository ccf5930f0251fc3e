"""``tconv bench``: tconv against the frameworks, side by side, in one run."""

from __future__ import annotations

import json
import sys

HELP = "time tconv against torch, TensorFlow, JAX and onnxruntime (each in its own process)"
EPILOG = """examples:
  tconv bench                       the full workload list, 7 repeats
  tconv bench --repeats 11 --json bench.json
  tconv bench --only seed --frameworks tconv torch
  tconv bench --cold                each timed call right after 0.15 s of quiet
  tconv bench --block 0             one timed call per turn after the warm calls
"""


def add_arguments(parser) -> None:
    from tconv.bench import BLOCK_SECONDS, FRAMEWORKS, WARM_SECONDS

    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per workload (>= 7 recommended)")
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--only", default=None, help="run the workloads whose name contains this text")
    parser.add_argument("--kind", choices=("transpose", "conv"), default=None)
    parser.add_argument("--cold", action="store_true",
                        help="time one call right after the quiet: no warm calls, --block 0")
    parser.add_argument("--warm", type=float, default=None, metavar="SECONDS",
                        help=f"untimed calls per turn for this long, at least one; 0: none (default: {WARM_SECONDS:g})")
    parser.add_argument("--block", type=float, default=None, metavar="SECONDS",
                        help="timed calls per turn, back to back, for this long, at least one; "
                             f"the turn's time is their mean (default: {BLOCK_SECONDS:g})")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON")
    parser.add_argument("--markdown", metavar="FILE", default=None, help="also write the table as Markdown")


def run(args) -> int:
    from tconv import bench
    from tconv.errors import TconvError

    if args.repeats < 1:
        raise TconvError("--repeats", args.repeats, "must be at least 1")
    workloads = [w for w in bench.default_workloads()
                 if (args.only is None or args.only in w.name) and (args.kind is None or w.kind == args.kind)]
    if not workloads:
        raise TconvError("--only", args.only, "matches no workload")
    if "tconv" not in args.frameworks:
        args.frameworks.insert(0, "tconv")
    if args.cold and (args.warm is not None or args.block is not None):
        raise TconvError("--cold", True, "sets --warm and --block to 0 itself: give either, not both")
    warm = 0.0 if args.cold else bench.WARM_SECONDS if args.warm is None else args.warm
    block = 0.0 if args.cold else bench.BLOCK_SECONDS if args.block is None else args.block
    for name, value in (("--warm", warm), ("--block", block)):
        if not value >= 0 or value > 60:
            raise TconvError(name, value, "must be between 0 and 60 seconds")
    report = bench.run(workloads, args.frameworks, args.repeats, warm=warm, block=block,
                       progress=lambda text: print(text, file=sys.stderr))
    table = bench.format_table(report)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    return 0
