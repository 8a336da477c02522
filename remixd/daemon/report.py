"""What `remixd status` prints: read beside a running daemon, from the journal and state_dir/status.json.

It only reads (README, "Commands"): the journal's counts and today's spend, what the daemon says is paused,
and the recent failures with their hints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remixd.clock import Clock
from remixd.config.state_values import BudgetConfig, StateConfig
from remixd.daemon.space import MB, free_bytes
from remixd.daemon.status import read_status, scan_line
from remixd.journal.records import Failure, Spend
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.journal.withheld import Withheld
from remixd.work.budget import next_utc_midnight

RECENT = 10  # failures and withheld inputs listed


def print_status(config: StateConfig, clock: Clock, *, as_json: bool) -> None:
    """`remixd status`: the journal's counts, today's spend, the daemon's pauses, withheld images, recent failures."""
    path = config.state_dir / JOURNAL_NAME
    if not path.exists():
        print(f"no journal yet at {path}: remixd has not run with this config")
        return
    journal = SqliteJournal(path, clock, upgrades=False)  # a daemon of an older remixd may be running it
    try:
        today = clock.utcnow().date()
        spent, sandbox, by_source = (
            journal.spent(today),
            journal.spent(today, sandbox=True),
            journal.spent_by_source(today),
        )
        possible, (size, size_free) = journal.possible_payments(), journal.size()
        inputs, jobs, failures = journal.counts(), journal.job_counts(), journal.recent_failures(RECENT)
        withheld = [found for found in journal.withheld() if found.all_withheld]  # paid for, nothing to see
        now = clock.utcnow()
        generations = [
            {
                "generation_id": job.generation_id,
                "rule": job.rule,
                "pending_s": round((now - job.generation_at).total_seconds()) if job.generation_at else None,
            }
            for job in journal.generating()
        ]
    finally:
        journal.close()
    daemon = read_status(config.state_dir) or {}
    free = free_bytes(config.state_dir)
    listed = daemon.get("paused") if daemon.get("running") else None
    paused = [str(reason) for reason in listed] if isinstance(listed, list) else []
    caps, spent_out = budget_today(config.budget, spent, clock.utcnow())
    if spent_out is not None and not any("budget" in reason for reason in paused):
        paused.append(spent_out)  # no daemon says so, but its next submission would pause
    failed_dirs = {str(inbox): folder for inbox, folder in config.failed_dirs}

    def failed_file(failure: Failure) -> str | None:
        folder = failed_dirs.get(failure.inbox)
        return None if folder is None else str(folder / failure.relpath)

    if as_json:
        print(
            json.dumps(
                {
                    "inputs": inputs,
                    "jobs": jobs,
                    "spent_today": {"images": spent.images, "usd": spent.usd, "unknown_outcome": spent.unknown},
                    "spend_today": {"by_cost_source": by_source},
                    "sandbox_today": {"images": sandbox.images, "usd": sandbox.usd, "billed": False},
                    "budget": caps,
                    "possible_payments": {"requests": possible.unknown, "images": possible.images, "usd": possible.usd},
                    "paused": paused,
                    "generations_pending": generations,
                    "state_free_bytes": free,
                    "journal": {"bytes": size, "free_bytes": size_free, "keep_days": config.journal.keep_days},
                    "state_min_free_bytes": config.journal.min_free_mb * MB,
                    "daemon": daemon,
                    "withheld": {
                        "inputs": len(withheld),
                        "recent": [
                            {
                                "inbox": w.inbox,
                                "relpath": w.relpath,
                                "rules": w.rules,
                                "images": w.withheld,
                                "at": w.at.isoformat(),
                            }
                            for w in withheld[:RECENT]
                        ],
                    },
                    "recent_failures": [
                        {
                            "inbox": f.inbox,
                            "relpath": f.relpath,
                            "rule": f.rule,
                            "kind": f.error.kind,
                            "message": f.error.message,
                            "hint": f.error.hint,
                            "failed_at": f.failed_at.isoformat(),
                            "file": failed_file(f),
                        }
                        for f in failures
                    ],
                },
                indent=2,
                sort_keys=True,
            )
        )
        return
    print("inputs: " + ", ".join(f"{state} {count}" for state, count in inputs.items()))
    print("jobs:   " + ", ".join(f"{state} {count}" for state, count in jobs.items()))
    print(
        f"spent today (UTC): {spent.images} images, ${spent.usd:.2f}"
        + (f" (counting {spent.unknown} request(s) with an unknown outcome as paid)" if spent.unknown else "")
        + _priced_by(by_source)
    )
    if possible.unknown:
        print(
            f"possible payments: {possible.unknown} request(s), {possible.images} images, ${possible.usd:.2f}, were "
            "sent and never answered (a crash, a timeout or a reset caught them): Ideogram may have billed them; "
            "check its usage page"
        )
    if (line := budget_text(caps, spent)) is not None:
        print(line)
    if sandbox.images:
        print(f"sandbox today: {sandbox.images} images, not billed (${sandbox.usd:.2f} at Ideogram's prices)")
    if daemon.get("running"):
        print(
            f"daemon: pid {daemon.get('pid')}, {daemon.get('queued')} queued, "
            f"{daemon.get('in_flight_images')} images in flight (ceiling {daemon.get('ceiling')})"
        )
        scanning = scan_line(daemon)
        if scanning:
            print(scanning)
    print(_space_text(config, free, size, size_free))
    for reason in paused:
        print(f"PAUSED: {reason}")
    if generations:
        oldest = generations[0]
        print(
            f"pending at Ideogram: {len(generations)} generations; the oldest for {oldest['pending_s']} s "
            f"({oldest['generation_id']}, rule {oldest['rule']}); remixd polls them, never sends them again"
        )
    _print_withheld(withheld)
    _print_failures(failures, failed_file)


def _print_withheld(withheld: Sequence[Withheld]) -> None:
    if withheld:
        print(
            f"withheld by Ideogram's safety check: {len(withheld)} input(s) got no image (billed; only the sidecar "
            "is written); the latest:"
        )
    for found in withheld[:RECENT]:
        print(f"  {found.at.isoformat()}  {found.relpath} [{found.rules}]: {found.withheld} image(s) withheld")


def _print_failures(failures: Sequence[Failure], failed_file: Callable[[Failure], str | None]) -> None:
    if failures:
        print("recent failures:")
    for failure in failures:
        rule = f" [{failure.rule}]" if failure.rule else ""
        print(
            f"  {failure.failed_at.isoformat()}  {failure.relpath}{rule}: {failure.error.message}"
            + (f" — {failure.error.hint}" if failure.error.hint else "")
        )
        if (where := failed_file(failure)) is not None:
            print(f"    in {where}")


def _priced_by(by_source: Mapping[str, float]) -> str:
    """Where today's prices came from (README "Prices"): the account's quote, the generation's usage, the table."""
    return "; priced by " + ", ".join(f"{source} ${usd:.2f}" for source, usd in by_source.items()) if by_source else ""


def budget_today(budget: BudgetConfig, spent: Spend, now: datetime) -> tuple[dict[str, Any], str | None]:
    """The caps, what is left of them today, and the pause they impose: known from the journal alone, so
    `remixd status` shows a spent budget even when no daemon runs (its next submission would pause)."""
    caps: dict[str, Any] = {
        "max_images_per_day": budget.max_images_per_day,
        "images_left": None if budget.max_images_per_day is None else max(0, budget.max_images_per_day - spent.images),
        "max_usd_per_day": budget.max_usd_per_day,
        "usd_left": None if budget.max_usd_per_day is None else round(max(0.0, budget.max_usd_per_day - spent.usd), 6),
    }
    resume = f"submissions resume at {next_utc_midnight(now).isoformat()}, or after a reload with higher caps"
    if caps["images_left"] == 0:
        return caps, f"the daily budget of {budget.max_images_per_day} images is spent; {resume}"
    if caps["usd_left"] is not None and caps["usd_left"] <= 0:
        return caps, f"the daily budget of ${budget.max_usd_per_day:.2f} is spent; {resume}"
    return caps, None


def budget_text(caps: Mapping[str, Any], spent: Spend) -> str | None:
    parts = []
    if caps["max_images_per_day"] is not None:
        parts.append(f"{spent.images} of {caps['max_images_per_day']} images ({caps['images_left']} left)")
    if caps["max_usd_per_day"] is not None:
        parts.append(f"${spent.usd:.2f} of ${caps['max_usd_per_day']:.2f} (${caps['usd_left']:.2f} left)")
    return f"budget today (UTC): {', '.join(parts)}" if parts else None


def _space_text(config: StateConfig, free: int | None, size: int, size_free: int) -> str:
    """The state folder's free space, and what the journal takes of it."""
    journal = (
        f"journal: {size / MB:,.1f} MB, {size_free / MB:,.1f} MB of it free pages given back a little at a time; "
        f"finished inputs older than {config.journal.keep_days} days are compacted (journal.keep_days)"
    )
    if free is None:
        return journal
    return (
        f"state folder: {free / MB:,.0f} MB free on its file system "
        f"(submissions pause below {config.journal.min_free_mb} MB, journal.min_free_mb)\n" + journal
    )
