"""What the journal records and the protocol stages use to reach it: frozen records, states, `Journal`.

Stages import only this module, never `journal.sqlite` (the SQLite implementation), so a PostgreSQL journal (several
hosts sharing one inbox and one budget) can replace `SqliteJournal` without touching them.

Input states: claimed -> done | duplicate | failed | vanished; failed -> retried (by `remixd retry`).
Job states: pending -> submitting -> answered -> written; pending -> duplicate; any unfinished -> failed.
An async v2 job: submitting -> generating (its generation id kept) -> answered, or failed when it failed.
`submitting` is a job's "sent" state: its request has left (or is leaving) and counts as paid until an answer
says otherwise; `attempts` counts requests sent; `possible_payments` those never answered either way.
Disposal of a finished input: pending -> moved | deleted | kept (vanished inputs: none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, Protocol

from remixd.errors import ErrorRecord

InputState = Literal["claimed", "done", "duplicate", "failed", "vanished", "retried"]
FinishState = Literal["done", "duplicate", "failed", "vanished"]
JobState = Literal["pending", "submitting", "generating", "answered", "written", "duplicate", "failed"]
Disposal = Literal["pending", "moved", "deleted", "kept", "none"]
CostSource = Literal["quote", "usage", "table"]  # README "Prices": where a job's cost_usd came from
INPUT_STATES: tuple[InputState, ...] = ("claimed", "done", "duplicate", "failed", "vanished", "retried")
JOB_STATES: tuple[JobState, ...] = (
    "pending", "submitting", "generating", "answered", "written", "duplicate", "failed",
)  # fmt: skip


class Candidate(NamedTuple):
    """A complete file found in an inbox, to be claimed. A named tuple rather than a frozen dataclass: a
    backlog makes 20,000 of them at start, and a tuple is built in a third of the time."""

    inbox: str
    relpath: str
    size: int
    mtime_ns: int
    detected_at: datetime
    companions: tuple[tuple[str, str], ...] = ()  # (file name, its text) of each companion beside it
    file_id: tuple[int, int] | None = None  # (st_dev, st_ino) where the platform gives them: a rename keeps both


@dataclass(frozen=True)
class JobSpec:
    """One planned (input, rule) request, recorded before anything is sent."""

    rule: str
    fingerprint: str
    endpoint: str
    request: Mapping[str, Any]
    images: int
    cost_usd: float
    sandbox: bool = False  # sent to the built-in sandbox: not billed, not counted against budget.*
    cost_source: CostSource = "table"  # where cost_usd came from: the account's quote or the route table


@dataclass(frozen=True)
class JobRecord:
    id: int
    input_id: int
    rule: str
    fingerprint: str
    endpoint: str
    request: Mapping[str, Any]
    images: int
    cost_usd: float
    state: JobState
    attempts: int
    last_error: ErrorRecord | None
    response: Mapping[str, Any] | None
    files: tuple[str, ...]
    created_at: datetime
    submitted_at: datetime | None
    answered_at: datetime | None
    completed_at: datetime | None
    duplicate_of: int | None
    sandbox: bool = False
    generation_id: str | None = None  # an async v2 generation at Ideogram
    generation_at: datetime | None = None  # when Ideogram accepted it
    generation_seed: int | None = None  # the seed it resolved to
    # Requests of this job that were sent and never answered either way: each may have been billed.
    possible_payments: int = 0
    cost_source: CostSource = "table"  # quote, usage (the generation's own cost) or table


@dataclass(frozen=True)
class InputRecord:
    id: int
    inbox: str
    relpath: str
    size: int
    mtime_ns: int
    sha256: str | None
    state: InputState
    detected_at: datetime
    claimed_at: datetime
    finished_at: datetime | None
    error: Mapping[str, Any] | None
    disposal: Disposal | None
    disposed_to: str | None
    jobs: tuple[JobRecord, ...] = ()
    companions: tuple[tuple[str, str], ...] = ()  # (file name, its text), as read when it was claimed


@dataclass(frozen=True)
class Payment:
    """One request a job sent, as the spend ledger has it: `billed` (the API answered), or `sent` and never
    answered either way, so possibly billed (README "Every request counts"). A failed input's error file
    keeps its unwritten jobs' payments, and a retried input's sidecars those of its earlier attempts, so that a
    journal rebuilt from the folders still counts them."""

    rule: str
    sent_at: datetime
    images: int
    usd: float
    status: Literal["sent", "billed"]
    cost_source: CostSource
    sandbox: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "sent_at": self.sent_at.isoformat(),
            "images": self.images,
            "usd": self.usd,
            "status": self.status,
            "cost_source": self.cost_source,
            "sandbox": self.sandbox,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, sandbox: bool) -> Payment:
        """`sandbox`: the document's own, for a payment that does not name it (an error file of an older
        remixd). Raises KeyError, TypeError or ValueError for a document that is not one."""
        status, source = document["status"], document["cost_source"]
        if status not in ("sent", "billed") or source not in ("quote", "usage", "table"):
            raise ValueError(f"not a payment: status {status!r}, cost_source {source!r}")
        return cls(
            rule=str(document["rule"]),
            sent_at=datetime.fromisoformat(str(document["sent_at"])),
            images=int(document["images"]),
            usd=float(document["usd"]),
            status=status,
            cost_source=source,
            sandbox=bool(document.get("sandbox", sandbox)),
        )


@dataclass(frozen=True)
class Earlier:
    """A written result the duplicate check found: a job whose input is still whole, or compacted to its
    files (README "A year of journal")."""

    id: int | None  # the job that wrote the files; None: compacted away
    files: tuple[str, ...]


@dataclass(frozen=True)
class Spend:
    """What was spent: every request sent counts, answered or not; `unknown` of them had no answer."""

    images: int
    usd: float
    unknown: int = 0


@dataclass(frozen=True)
class Failure:
    """One line of `remixd status`'s recent failures."""

    input_id: int
    inbox: str
    relpath: str
    rule: str | None
    error: ErrorRecord
    failed_at: datetime


@dataclass(frozen=True)
class Reroll:
    """`remixd reroll`: send this input's content again on purpose, with `seed`, bypassing the duplicate check."""

    id: int
    seed: int
    of_input: int  # the done input it repeats


class Journal(Protocol):
    def claim(
        self, inbox: str, relpath: str, size: int, mtime_ns: int, detected_at: datetime | None = None
    ) -> int | None: ...
    def claim_many(self, candidates: Iterable[Candidate]) -> list[int | None]: ...
    def set_hash(self, input_id: int, sha256: str) -> None: ...
    def add_jobs(self, input_id: int, specs: Sequence[JobSpec]) -> list[JobRecord]: ...
    def start_submit(self, job_id: int) -> None: ...
    def record_answer(
        self, job_id: int, response: Mapping[str, Any], *, images: int | None = None, cost_usd: float | None = None
    ) -> None: ...
    def record_generation(self, job_id: int, generation_id: str, seed: int | None, *, images: int) -> None: ...
    def record_written(self, job_id: int, files: Sequence[str]) -> None: ...
    def record_job_failure(
        self, job_id: int, error: ErrorRecord, *, final: bool, not_billed: bool = False
    ) -> JobRecord: ...
    def mark_duplicate(self, job_id: int, earlier: Earlier) -> None: ...
    def finish_input(self, input_id: int, state: FinishState, error: Mapping[str, Any] | None = None) -> None: ...
    def set_disposed(self, input_id: int, disposal: Disposal, destination: str | None = None) -> None: ...
    def find_duplicate(self, sha256: str, rule: str, fingerprint: str) -> Earlier | None: ...
    def unwritten_payments(self, input_id: int) -> list[Payment]: ...
    def earlier_payments(self, input_id: int) -> list[Payment]: ...
    def get_input(self, input_id: int) -> InputRecord: ...
    def get_job(self, job_id: int) -> JobRecord: ...
    def unfinished(self) -> list[InputRecord]: ...
    def unfinished_after(self, after: int, limit: int) -> list[tuple[int, str]]: ...
    def generating(self) -> list[JobRecord]: ...
    def oldest_claim(self) -> datetime | None: ...
    def spent(self, day: date, *, sandbox: bool = False) -> Spend: ...
    def possible_payments(self) -> Spend: ...
    def counts(self) -> dict[str, int]: ...
    def job_counts(self) -> dict[str, int]: ...
    def recent_failures(self, limit: int = 10) -> list[Failure]: ...
    def failed_inputs(self) -> list[InputRecord]: ...
    def shares_companions(self, record: InputRecord) -> bool: ...
    def reset_for_retry(self, input_id: int) -> bool: ...
    def forget_renamed(self, input_id: int) -> str | None: ...
    def add_reroll(self, of_input: InputRecord, seed: int) -> int: ...
    def take_reroll(self, input_id: int) -> Reroll | None: ...
    def waiting_rerolls(self) -> set[tuple[str, str]]: ...
    def close(self) -> None: ...
