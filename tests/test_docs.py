"""The documentation that is generated must match what the code registers."""

from __future__ import annotations

import pathlib

from linops.rules_table import rule_table, rules

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_rule_table_in_docs_matches_registered_rules():
    text = (ROOT / "docs" / "rules.md").read_text()
    assert rule_table() in text, "docs/rules.md is stale: regenerate it with `python -m linops rules`"


def test_rule_table_lists_structural_rules_that_exist():
    names = {name for _, _, name, _ in rules()}
    for expected in ("slogdet_scalar", "slogdet_permutation", "pinv_diagonal", "inv_kronecker",
                     "inv_lowrank_update", "slogdet_product"):
        assert expected in names
    assert all(doc for _, _, name, doc in rules() if name != "no_pair_rule"), "every rule needs a docstring"


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        if "class MyOp" in block:  # the extension sketch defines a rule for a class of its own
            continue
        exec(compile(block, "README.md", "exec"), {})
