"""``python -m linops demo [--quick] [--backend numpy|jax|torch]``: run the demo;
``python -m linops rules``: print the rule table; ``python -m linops --help``: the options."""

from __future__ import annotations

import argparse
import sys

_BACKENDS = ("numpy", "jax", "torch")
_INSTALL = {"jax": "pip install jax", "torch": "pip install torch"}


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m linops``.

    Example:
        >>> parser().parse_args(["demo", "--quick", "--backend", "jax"]).backend
        'jax'
    """
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the demo's."""
    from linops.demo import SECTIONS

    top = argparse.ArgumentParser(prog="python -m linops", description="linops from the command line.")
    commands = top.add_subparsers(dest="command", metavar="{demo,rules}")
    demo = commands.add_parser(
        "demo", help="structured problems solved by linops, timed against dense and SciPy references (default)",
        description="Structured problems solved by linops, timed against what one would write without it "
                    "(dense solvers of the same framework, SciPy, closed forms), with a summary table. "
                    "The full demo takes about 2 minutes on 2 CPU cores, --quick about 20 s.")
    demo.add_argument("--backend", choices=_BACKENDS, default="numpy",
                      help="the framework whose arrays the problems use (default: numpy); jax runs in float64")
    demo.add_argument("--quick", action="store_true", help="smaller problems: the whole demo in about 20 s")
    demo.add_argument("--only", type=_sections, metavar="SECTION[,SECTION...]", default=SECTIONS,
                      help=f"run only these sections, of: {', '.join(SECTIONS)}")
    demo.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                      help="auto (default): a tqdm bar on a terminal when tqdm is installed, else one line per "
                           "step; bar, lines, none")
    commands.add_parser("rules", help="print the table of dispatch rules", description="Print the rule table.")
    return top, demo


def _sections(text: str) -> tuple[str, ...]:
    from linops.demo import SECTIONS

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section {', '.join(unknown) or repr(text)}; "
                                         f"valid: {', '.join(SECTIONS)}")
    return names


def main(argv=None) -> int:
    """Run the command line; returns the exit status (2 for a usage error, as argparse does)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "demo")  # ``python -m linops`` and ``python -m linops --quick`` run the demo
    top, demo = _parsers()
    args, unknown = top.parse_known_args(argv)
    if unknown:
        (demo if args.command == "demo" else top).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "rules":
        from linops.rules_table import rule_table

        print(rule_table())
        return 0
    if args.progress == "bar":
        try:
            import tqdm  # noqa: F401  (optional dependency)
        except ImportError:
            demo.error("--progress bar needs tqdm (pip install tqdm); --progress lines works without it")
    from linops.backends import enable_float64

    try:
        enable_float64(args.backend)
    except ImportError as err:
        demo.error(f"--backend {args.backend} needs {args.backend}, which cannot be imported here ({err}); "
                  f"install it ({_INSTALL[args.backend]}) or choose another backend")
    from linops.demo import run

    run(args.backend, quick=args.quick, only=args.only, progress=args.progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
