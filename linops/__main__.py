"""``python -m linops demo``: run the demo; ``python -m linops rules``: print the rule table."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "demo"
    if command == "demo":
        from linops.demo import run

        run()
        return 0
    if command == "rules":
        from linops.rules_table import rule_table

        print(rule_table())
        return 0
    print("usage: python -m linops [demo|rules]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
