"""What the review page shows, built from journal records as plain values, and the Jinja2 templates that show
it. Templates escape every value (autoescape): a file name or a prompt holding HTML is shown, never run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jinja2

from remixd.config.state_values import BudgetConfig
from remixd.errors import ErrorRecord
from remixd.journal.browse import Overview
from remixd.journal.records import InputRecord, JobRecord

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("remixd.review", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt name is an error in the tests, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> bytes:
    return ENVIRONMENT.get_template(template).render(**values).encode("utf-8")


@dataclass(frozen=True)
class Live:
    """What only the running daemon knows (its memory, not the journal)."""

    queued: int  # claimed inputs waiting for a worker
    in_flight_images: int
    ceiling: int
    paused: tuple[str, ...]  # why submissions wait: a refused key, the day's budget, a missing inbox


@dataclass(frozen=True)
class Result:
    job_id: int
    index: int  # 1-based, as in the result's name STEM.RULE.K
    rule: str
    route: str  # the endpoint's path: /remix, /v1/ideogram-v3/remix, …
    model: str
    cost_usd: float
    prompt: str  # as Ideogram returned it (after magic prompt), else as sent
    seed: int | None
    resolution: str | None
    withheld: bool  # Ideogram's safety check kept the image back
    has_image: bool
    duplicate: bool  # not sent: the same content and request were done before


@dataclass(frozen=True)
class Failure:
    rule: str | None
    kind: str
    message: str
    hint: str
    http_status: int | None


@dataclass(frozen=True)
class Card:
    id: int
    inbox: str
    name: str
    state: str
    when: str
    has_source: bool
    results: tuple[Result, ...]
    failure: Failure | None
    cost_usd: float
    can_reroll: bool  # done, its copy in the done folder or kept in its inbox: `remixd reroll` can send it again


def card(record: InputRecord, has_source: bool) -> Card:
    results = tuple(result for job in record.jobs for result in _results(job))
    return Card(
        id=record.id,
        inbox=record.inbox,
        name=record.relpath,
        state=record.state,
        when=_when(record.finished_at or record.claimed_at),
        has_source=has_source,
        results=results,
        failure=failure(record) if record.state == "failed" else None,
        cost_usd=round(sum(job.cost_usd for job in record.jobs if job.state not in ("pending", "duplicate")), 6),
        can_reroll=record.state == "done" and record.disposal in ("moved", "kept"),
    )


def _results(job: JobRecord) -> list[Result]:
    items: list[Any] = list((job.response or {}).get("data") or [])
    sent = str(job.request.get("prompt", ""))
    count = max(len(job.files), len(items))
    results = []
    for number in range(1, count + 1):
        listed = items[number - 1] if number <= len(items) else None
        item: Mapping[str, Any] = listed if isinstance(listed, dict) else {}
        name = job.files[number - 1] if number <= len(job.files) else ""
        seed = item.get("seed")
        results.append(
            Result(
                job_id=job.id,
                index=number,
                rule=job.rule,
                route=urlsplit(job.endpoint).path or job.endpoint,
                model=str(job.request.get("model", "")),
                cost_usd=round(job.cost_usd / count, 6) if count else 0.0,
                prompt=str(item.get("prompt") or sent),
                seed=seed if isinstance(seed, int) else None,
                resolution=str(item["resolution"]) if item.get("resolution") else None,
                withheld=item.get("is_image_safe") is False or (bool(name) and name.endswith(".json")),
                has_image=bool(name) and not name.endswith(".json"),
                duplicate=job.state == "duplicate",
            )
        )
    return results


def failure(record: InputRecord) -> Failure:
    """The first failed job's error, else the input's own (an unreadable image fails before any job)."""
    job = next((job for job in record.jobs if job.state == "failed" and job.last_error is not None), None)
    if job is not None and job.last_error is not None:
        error = job.last_error
    else:
        document: Mapping[str, Any] = record.error or {}
        nested = document.get("error")  # an input's error is its whole error file
        error = ErrorRecord.from_json(nested if isinstance(nested, dict) else document)
    return Failure(
        rule=None if job is None else job.rule,
        kind=error.kind,
        message=error.message,
        hint=error.hint,
        http_status=error.http_status,
    )


def overview(journal: Overview, live: Live | None, budget: BudgetConfig) -> dict[str, Any]:
    """The overview as JSON-ready values: the same for the first render and for every live update."""
    inboxes = [
        {
            "inbox": inbox,
            "queued": counts.get("claimed", 0),
            "done": counts.get("done", 0) + counts.get("duplicate", 0),
            "failed": counts.get("failed", 0),
        }
        for inbox, counts in sorted(journal.inboxes.items())
    ]
    return {
        "running": live is not None,
        "queued": sum(row["queued"] for row in inboxes),
        "waiting": 0 if live is None else live.queued,
        "in_flight_images": 0 if live is None else live.in_flight_images,
        "ceiling": 0 if live is None else live.ceiling,
        "at_ideogram": journal.submitting + journal.generating,
        "generating": journal.generating,
        "downloading": journal.downloading,
        "paused": [] if live is None else list(live.paused),
        "spent_images": journal.spent.images,
        "spent_usd": f"{journal.spent.usd:.2f}",
        "unanswered": journal.spent.unknown,  # sent, never answered: counted as paid
        "sandbox_usd": f"{journal.sandbox.usd:.2f}",
        "cap_images": budget.max_images_per_day,
        "cap_usd": None if budget.max_usd_per_day is None else f"{budget.max_usd_per_day:.2f}",
        "spend_percent": _percent(
            journal.spent.usd, budget.max_usd_per_day, journal.spent.images, budget.max_images_per_day
        ),
        "failed_last_day": journal.failed_since,
        "inboxes": inboxes,
    }


def _percent(usd: float, usd_cap: float | None, images: int, image_cap: int | None) -> int | None:
    shares = [value / cap for value, cap in ((usd, usd_cap), (float(images), image_cap)) if cap]
    return None if not shares else min(100, math.floor(100 * max(shares)))


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
