"""bench/RESULTS.md keeps what earlier runs wrote: a run replaces its own section and nothing else."""

from __future__ import annotations

from pathlib import Path

from bench.run import SCALE_HEADING, _merge, section_heading

BEFORE = f"""# remixd bench results

`python -m bench`, all figures

| 1 throughput | 16.3 s |

## Figure 6, run on its own

plan: 1.52 s, written by hand

{SCALE_HEADING}

backlog: READY 1.44 s
"""


def test_an_only_run_adds_its_own_section_and_keeps_every_other(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(BEFORE, encoding="utf-8")
    once = _merge(results, "plan: 1.94 s\n", "## `python -m bench --only plan`")
    assert once.startswith(BEFORE.rstrip() + "\n\n## `python -m bench --only plan`\n\nplan: 1.94 s\n")
    results.write_text(once, encoding="utf-8")
    again = _merge(results, "plan: 2.01 s\n", "## `python -m bench --only plan`")
    assert again == once.replace("1.94", "2.01")  # the same section replaced, not a second one


def test_a_whole_run_replaces_the_top_and_a_scale_run_its_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(BEFORE, encoding="utf-8")
    whole = _merge(results, "`python -m bench`, again\n", None)
    assert whole == BEFORE.replace(
        "`python -m bench`, all figures\n\n| 1 throughput | 16.3 s |", "`python -m bench`, again"
    )
    results.write_text(whole, encoding="utf-8")
    scaled = _merge(results, "backlog: READY 1.2 s\n", SCALE_HEADING)
    assert scaled == whole.replace("READY 1.44 s", "READY 1.2 s")
    assert "## Figure 6, run on its own\n\nplan: 1.52 s, written by hand" in scaled


def test_a_scale_run_of_some_figures_keeps_the_whole_scale_section() -> None:
    assert section_heading("python -m bench --scale --only journal", scale_run=True, whole=False) == (
        "## `python -m bench --scale --only journal`"
    )
    assert section_heading("python -m bench --scale", scale_run=True, whole=True) == SCALE_HEADING
    assert section_heading("python -m bench", scale_run=False, whole=True) is None
