"""`python -m bench [--quick | --smoke] [--scale] [--only NAME,…]`: run remixd against the sandbox on loopback
and print the figures of README's "Benchmarks", each beside a reference measured in the same run; write them to
bench/RESULTS.md.

--quick   the idle window (and remixd's rescan_s with it) is 15 s instead of 60 s; the target scales with it
--smoke   every figure at tiny sizes, in well under a minute: checks that the bench works, not the timings
--scale   the scale figures instead: 1,000,000 files waiting at start, and a journal of a year (about 15
          minutes and 6 GB of disk the first time; the file tree is kept in --workdir and reused). They are
          written to their own section of bench/RESULTS.md, leaving the other figures as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bench import figures, scale
from bench.figures import Row, Sizes

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SCALE_HEADING = "## Scale: a million files, a year of journal"
SCALE_WORKDIR = Path(tempfile.gettempdir()) / "remixd-bench-scale"  # kept between runs: the tree takes minutes


SizesT = TypeVar("SizesT")
Figure = Callable[[Path, Callable[[str], None]], list[Row]]


def _sized(figure: Callable[[Path, SizesT, Callable[[str], None]], list[Row]], sizes: SizesT) -> Figure:
    """A figure bound to the sizes it runs at."""
    return lambda folder, note: figure(folder, sizes, note)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; "
        f"Python {platform.python_version()}; {platform.system()} {platform.release()}"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def table(rows: list[Row]) -> str:
    header = ("figure", "measured", "reference (same run)", "ratio", "target", "met")
    lines = [header]
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "**NO**")
        lines.append(
            (
                row.figure,
                f"{_number(row.measured)} {row.unit}",
                f"{_number(row.reference)} ({row.reference_label})",
                _number(row.ratio),
                row.target,
                met,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a 15 s idle window instead of 60 s")
    size.add_argument("--smoke", action="store_true", help="tiny sizes; checks only that the bench works")
    parser.add_argument("--scale", action="store_true", help=f"the scale figures: {', '.join(scale.FIGURES)}")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated figures to run (default: all of {','.join(figures.FIGURES)}, "
        f"or with --scale of {','.join(scale.FIGURES)})",
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive baseline (150 s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs go (default: a temp folder)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="markdown file to write (default: bench/RESULTS.md; --smoke writes none)",
    )
    args = parser.parse_args(argv)
    sizes: Sizes = figures.SMOKE if args.smoke else figures.QUICK if args.quick else figures.FULL
    if args.skip_naive:
        sizes = dataclasses.replace(sizes, naive=False)
    known = scale.FIGURES if args.scale else figures.FIGURES
    names = [name.strip() for name in (args.only or ",".join(known)).split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(known)}")
    command = (
        "python -m bench"
        + (" --scale" if args.scale else "")
        + (" --quick" if args.quick else " --smoke" if args.smoke else "")
        + (" --skip-naive" if args.skip_naive else "")
        + (f" --only {','.join(names)}" if names != list(known) else "")
    )
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        print(f"  {text}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="remixd-bench-") as temporary:
        work = args.workdir or (SCALE_WORKDIR if args.scale and not args.smoke else Path(temporary))
        for name in names:
            print(f"bench: {name} …", file=sys.stderr, flush=True)
            if args.scale:
                run = _sized(scale.FIGURES[name], scale.SCALE_SMOKE if args.smoke else scale.SCALE)
            else:
                run = _sized(figures.FIGURES[name], sizes)
            rows += run(work / name, note)
    elapsed = time.monotonic() - started
    report = table(rows)
    print(report)
    print(f"\n{machine()}\n{command}: {elapsed:.0f} s")
    destination = args.results or (None if args.smoke else RESULTS)
    if destination is not None:
        body = (
            f"`{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s\n\n"
            f"Machine: {machine()}\n\n{report}\n\nNotes from the run:\n\n" + "".join(f"- {text}\n" for text in notes)
        )
        heading = section_heading(command, scale_run=args.scale, whole=names == list(known))
        destination.write_text(_merge(destination, body, heading), encoding="utf-8")
        print(f"written to {destination}", file=sys.stderr)
    return 0


def section_heading(command: str, *, scale_run: bool, whole: bool) -> str | None:
    """Where a run's figures go: a whole run's at the top (None) or under the scale heading, a run of some
    figures (`--only`) under its own command. A `--scale --only journal` run used to take the scale heading
    and so replaced the backlog figures of the last whole scale run."""
    if not whole:
        return f"## `{command}`"
    return SCALE_HEADING if scale_run else None


def _merge(destination: Path, body: str, heading: str | None) -> str:
    """The results file with this run's section replaced, every other section as it was: the whole run's
    figures at the top (`heading` None), the scale figures and each `--only` run under a heading of their own
    (a new one goes last). An `--only` run used to replace the whole run's figures and every note below them."""
    previous = destination.read_text(encoding="utf-8") if destination.exists() else "# remixd bench results\n"
    top, sections = _sections(previous)
    if heading is None:
        top = f"# remixd bench results\n\n{body}"
    else:
        sections[heading] = body
    return "\n\n".join([top.strip(), *(f"{name}\n\n{text.strip()}" for name, text in sections.items())]) + "\n"


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """What comes before the first `## ` heading, and each `## ` section's text by its heading line."""
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    current = top
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = sections.setdefault(line.rstrip("\n"), [])
        else:
            current.append(line)
    return "".join(top), {name: "".join(lines) for name, lines in sections.items()}
