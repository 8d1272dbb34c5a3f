"""``rafiki-ray ctl DIR stop|resume|delete|clone RUN [--set key=value ...] [--warm]``.

``add_parser(subparsers)`` registers the ``ctl`` command on an argparse subparsers object;
``ctl DIR`` alone lists the runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ctl", help="live control of a running experiment",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="the experiment directory (storage_path/name)")
    p.add_argument("op", nargs="?", choices=["stop", "resume", "delete", "clone", "list"],
                   default="list")
    p.add_argument("run", nargs="?", help="run id, e.g. run-0003")
    p.add_argument("--set", dest="edits", action="append", default=[], metavar="KEY=VALUE",
                   help="clone: edit a config key (dotted path; value read as JSON)")
    p.add_argument("--warm", action="store_true",
                   help="clone: start from the parent's weights at the parent's chunk")
    p.add_argument("--no-wait", action="store_true", help="journal and return at once")
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    from rafiki_ray.control.client import Control, RefusedError

    ctl = Control(args.dir)
    if args.op == "list":
        for rid, r in sorted(ctl.runs().items()):
            print(f"{rid}  {r['status']:<9}  chunks={r['chunks']:<4} origin={r['origin']}"
                  + (f" parent={r['parent']}" if r["parent"] else ""))
        return 0
    if not args.run:
        print(f"ctl {args.op}: RUN is required")
        return 2
    try:
        out = ctl.op(args.op, args.run, edits=args.edits or None, warm=args.warm,
                     wait=not args.no_wait, timeout=args.timeout)
    except (RefusedError, ValueError, TypeError) as exc:
        print(str(exc))
        return 1
    print(json.dumps({k: out.get(k) for k in ("outcome", "reason", "new_run")}))
    return 0
