"""`remixd plan`: what a run would do and cost, found by the run's own parts, without paying or writing.

The scan, the ignore rules, the rules and their rendered requests, the journal's knowledge and the price table
are the ones `remixd run` uses, so the plan cannot drift from the run (README, "remixd plan"). It sends
nothing, claims nothing and opens the journal read-only, so it works beside a running daemon. A file is
checked only as far as its header (is it an image remixd can send): a full decode of a 10,000-file backlog
would take minutes, and `run` still checks every file before paying for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from remixd import rules
from remixd.config.companion import is_companion
from remixd.config.model import Config, InboxConfig
from remixd.config.state_values import BudgetConfig
from remixd.errors import InboxUnavailable, InputError
from remixd.ideogram.requests import RemixRequest
from remixd.intake import companions as intake_companions
from remixd.intake.scan import scan_stat
from remixd.journal.ledger import dollars, micros
from remixd.journal.readonly import JournalView, read_journal
from remixd.work import companions
from remixd.work.destination import destination, job_fingerprint
from remixd.work.header import oriented_size, read_caption
from remixd.work.quotes import Price

PAID = ("new", "reroll")  # the rows a run would send and pay for
SANDBOX_BASE_URL = "sandbox:"  # api.sandbox: true sends to the in-process emulator, which has no fixed address


@dataclass(frozen=True)
class Row:
    """One candidate file and one rule, or one file no request would be made for (`rule` or `request` None)."""

    inbox: str
    relpath: str
    rule: str | None
    journal: str  # new | reroll (one waits: sent again, paid) | duplicate | done | failed | in progress | none
    reason: str | None = None  # why no request would be sent
    endpoint: str | None = None
    request: dict[str, Any] | None = None  # the fields exactly as sent
    images: int = 0
    usd: float = 0.0
    within_budget: bool = True
    quote: str | None = None  # with --quote: Ideogram's own price for a v2 request, or why there is none
    remix: RemixRequest | None = field(default=None, repr=False, compare=False)  # the request, for a quote

    def to_dict(self) -> dict[str, Any]:
        return {
            "inbox": self.inbox, "relpath": self.relpath, "rule": self.rule, "journal": self.journal,
            "reason": self.reason, "endpoint": self.endpoint, "request": self.request, "images": self.images,
            "usd": self.usd, "within_budget": self.within_budget, "quote": self.quote,
        }  # fmt: skip


@dataclass
class Total:
    """One rule's requests that would be paid; money summed in integer micro-dollars, as the journal sums it."""

    inputs: int = 0
    images: int = 0
    usd_micros: int = 0

    @property
    def usd(self) -> float:
        return dollars(self.usd_micros)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "images": self.images, "usd": self.usd}


@dataclass(frozen=True)
class Plan:
    rows: list[Row]
    budget: BudgetConfig
    spent_images: int
    spent_usd: float
    totals: dict[str, Total] = field(default_factory=dict)  # per rule, for the requests that would be paid
    bills: bool = True  # False: the built-in sandbox, which bills nothing, so every request fits

    @property
    def paid(self) -> list[Row]:
        return [row for row in self.rows if row.journal in PAID]

    def to_dict(self) -> dict[str, Any]:
        paid = self.paid
        return {
            "rows": [row.to_dict() for row in self.rows],
            "totals": {name: total.to_dict() for name, total in self.totals.items()},
            "total": {
                "inputs": len({(row.inbox, row.relpath) for row in paid}),
                "images": sum(row.images for row in paid),
                "usd": dollars(sum(micros(row.usd) for row in paid)),
                "within_budget": sum(1 for row in paid if row.within_budget),
            },
            "budget": {
                "max_images_per_day": self.budget.max_images_per_day,
                "max_usd_per_day": self.budget.max_usd_per_day,
                "spent_today": {"images": self.spent_images, "usd": self.spent_usd},
            },
        }


def make_plan(config: Config, journal_path: Path, today: date, only: Sequence[Path] = ()) -> Plan:
    """The plan for every candidate file of every inbox (or those at or under the paths in `only`)."""
    base_url = SANDBOX_BASE_URL if config.api.sandbox else config.api.base_url
    wanted = [str(path.resolve()) for path in only]
    rows: list[Row] = []
    with read_journal(journal_path, today) as view:
        for inbox in config.inboxes:
            rows += _inbox_rows(config, inbox, view, base_url, wanted)
        spent = view.spent_today
    for path in wanted:
        if not any(_inside(path, str(inbox.path)) for inbox in config.inboxes):
            rows.append(Row("", path, None, "none", f"{path} is in no inbox of {config.source}"))
    return _placed(Plan(rows, config.budget, spent.images, spent.usd, bills=not config.api.sandbox))


def _placed(plan: Plan) -> Plan:
    """`plan` with each new request's place in today's budget, at its price, and the totals of those paid."""
    totals: dict[str, Total] = {}
    images_left, usd_left = _left(plan.budget, plan.spent_images, plan.spent_usd)
    placed: list[Row] = []
    fits = True
    for row in plan.rows:
        if row.journal in PAID:
            images_left -= row.images
            usd_left -= micros(row.usd)
            # The first request over the budget pauses every submission until the next UTC day.
            fits = not plan.bills or (fits and images_left >= 0 and usd_left >= 0)
            row = dataclasses.replace(row, within_budget=fits)  # noqa: PLW2901 — the same row, now placed
            total = totals.setdefault(str(row.rule), Total())
            total.inputs, total.images = total.inputs + 1, total.images + row.images
            total.usd_micros += micros(row.usd)
        placed.append(row)
    return dataclasses.replace(plan, rows=placed, totals=totals)


def _left(budget: BudgetConfig, spent_images: int, spent_usd: float) -> tuple[float, float]:
    """What is left of today's caps: images, and USD in micro-dollars (exact, as the budget counts it)."""
    images = budget.max_images_per_day
    usd = budget.max_usd_per_day
    return (
        float("inf") if images is None else images - spent_images,
        float("inf") if usd is None else micros(usd) - micros(spent_usd),
    )


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _inbox_rows(
    config: Config, inbox: InboxConfig, view: JournalView, base_url: str, wanted: list[str]
) -> Iterator[Row]:
    inbox_rules = config.rules_for(inbox)
    where = destination(config.api.base_url, sandbox=config.api.sandbox)
    captions = rules.uses("caption", inbox_rules)
    sizes = any(rule.match_input for rule in inbox_rules)
    name = str(inbox.path)
    if wanted and not any(_inside(path, name) or _inside(name, path) for path in wanted):
        return
    try:
        files = list(scan_stat(inbox))
    except InboxUnavailable as error:
        yield Row(name, "", None, "none", f"{error.message} — {error.hint}")
        return
    finder = intake_companions.Finder()
    for path, relpath, status in files:
        if wanted and not any(_inside(path, folder) for folder in wanted):
            continue
        if inbox.companions != "off" and is_companion(relpath):
            continue  # goes with its image, never alone
        # A reroll waiting for the file sends it again, whatever else the journal knows of it (README "Commands").
        seed = view.reroll_seed(name, relpath, status.st_size, status.st_mtime_ns)
        known = None if seed is not None else view.known(name, relpath, status.st_size, status.st_mtime_ns)
        if known is not None:
            yield Row(name, relpath, None, known, f"the journal has it as {known}; it is not sent again")
            continue
        # The file is opened once: its header is looked at, and it is hashed for the duplicate check when
        # the journal has a result of a source of its size.
        problem, sha256 = _look(path, status, hash_it=seed is None and view.may_be_duplicate(status.st_size))
        if problem is not None:
            yield Row(name, relpath, None, "none", problem)
            continue
        source = Path(path)
        found = finder.read(source) if inbox.companions != "off" else ()
        if not found and inbox.companions == "required":
            fix = "add STEM.txt, STEM.yaml or STEM.json beside it"
            yield Row(name, relpath, None, "none", f"it waits for its companion (companions: required) — {fix}")
            continue
        try:
            text, matched = companions.applied(relpath, source, found, inbox_rules)
            caption = read_caption(source) if captions else ""
            size = oriented_size(source) if sizes else None
            jobs = rules.plan(relpath, matched, caption=caption, size=size, text=text)
            jobs = jobs if seed is None else [rules.reseeded(job, seed) for job in jobs]
        except InputError as error:
            yield Row(name, relpath, None, "none", f"{error.message} — {error.hint}")
            continue
        if not jobs:
            tried = ", ".join(inbox.rules)
            yield Row(name, relpath, None, "none", f"no rule matches it (rules tried: {tried})")
            continue
        for job in jobs:
            fingerprint = job_fingerprint(job.fingerprint, where)  # as the worker journals it
            duplicate = sha256 is not None and view.written(sha256, job.rule, fingerprint)
            yield Row(
                name,
                relpath,
                job.rule,
                "reroll" if seed is not None else "duplicate" if duplicate else "new",
                None,
                base_url + job.request.endpoint_path(),
                job.request.wire_fields(),
                0 if duplicate else job.request.num_images,
                0.0 if duplicate else job.request.cost_usd(),
                remix=job.request,
            )


def _look(path: str, status: os.stat_result, *, hash_it: bool) -> tuple[str | None, str | None]:
    """Why `run` would fail this file without sending it, as far as its header tells (None when it looks
    fine), and its sha256 when `hash_it`."""
    if stat.S_ISLNK(status.st_mode):
        return "a symbolic link: remixd never follows links out of an inbox; copy the file itself in", None
    if status.st_size == 0:
        return "empty (0 bytes)", None
    try:
        with open(path, "rb") as file:  # noqa: PTH123 — a str from the scan; a Path per file costs 10% here
            with Image.open(file):
                pass
            if not hash_it:
                return None, None
            file.seek(0)
            return None, hashlib.file_digest(file, "sha256").hexdigest()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return f"not an image remixd can read ({type(error).__name__}); it would go to the failed folder", None


def render(plan: Plan) -> Iterator[str]:
    """The plan for a person: a block per file, then the totals."""
    for row in plan.rows:
        where = f"{row.relpath}" if not row.inbox else f"{row.inbox}/{row.relpath}"
        if row.request is None:
            yield f"{where}: {row.reason}"
            continue
        cost = f"{row.images} image{'s' if row.images != 1 else ''}, ${row.usd:.2f}"
        over = "" if row.within_budget else "  (over today's budget: waits for tomorrow)"
        quoted = "" if row.quote is None else f"  (quote: {row.quote})"
        state = "reroll waiting" if row.journal == "reroll" else row.journal
        yield f"{where}  [{row.rule}]  {state}  {cost}{quoted}{over}"
        yield f"    POST {row.endpoint}  {_compact(row.request)}"
    summary = plan.to_dict()["total"]
    for name, total in plan.totals.items():
        yield f"{name}: {total.inputs} inputs -> {total.images} images -> ${total.usd:.2f}"
    line = f"total: {summary['inputs']} inputs -> {summary['images']} images -> ${summary['usd']:.2f}"
    if plan.budget.max_images_per_day is None and plan.budget.max_usd_per_day is None:
        yield line + "; no daily budget set"
        return
    caps = []
    if plan.budget.max_images_per_day is not None:
        caps.append(f"{plan.spent_images} of {plan.budget.max_images_per_day} images")
    if plan.budget.max_usd_per_day is not None:
        caps.append(f"${plan.spent_usd:.2f} of ${plan.budget.max_usd_per_day:.2f}")
    fits = summary["within_budget"]
    paid = len(plan.paid)
    verdict = "all fit in today's budget" if fits == paid else f"the budget stops after {fits} of {paid} requests"
    yield f"{line}; spent today {' and '.join(caps)}: {verdict}"


def _compact(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, ensure_ascii=False)


def with_quotes(plan: Plan, price: Callable[[RemixRequest, Path], Price]) -> Plan:
    """The plan at the account's prices (`remixd plan --quote`): each new request on a v2 route costs what
    the budget will count for it, its quote (else the table's price, with why), and the fit is placed again."""
    return _placed(dataclasses.replace(plan, rows=[_quoted(row, price) for row in plan.rows]))


def _quoted(row: Row, price: Callable[[RemixRequest, Path], Price]) -> Row:
    if row.journal not in PAID or row.remix is None or not row.remix.route.is_v2:
        return row
    found = price(row.remix, Path(row.inbox) / row.relpath)
    shown = f"${found.usd:.2f} {found.detail}" if found.source == "quote" else f"none: {found.detail}"
    return dataclasses.replace(row, usd=found.usd, quote=shown)
