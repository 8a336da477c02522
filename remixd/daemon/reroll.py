"""`remixd reroll`: send done inputs again on purpose (README, "Commands"), for the CLI and the review page.

`find_rerolls` says what each would cost (nothing is changed); `send_rerolls` records each reroll in the
journal, then puts the done copy back into its inbox, where a running daemon (or the next `remixd once`) claims
it as usual: a new job with the reroll's seed, the duplicate check bypassed for it alone, results named beside
the earlier ones, the daily budget applied. An input kept in its inbox (after: keep) stays where it is: the
reroll lets one claim of it through, and a touch in state_dir wakes a running daemon for it (intake.wake).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from remixd import rules
from remixd.config.model import Config, InboxConfig
from remixd.errors import InputError
from remixd.ideogram.requests import RemixRequest
from remixd.intake.wake import poke
from remixd.journal.records import InputRecord
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.work import companions
from remixd.work.header import oriented_size, read_caption
from remixd.work.quotes import Price, table_price

MAX_SEED = 2_147_483_647  # Ideogram's seed range is 0..2^31-1


@dataclass(frozen=True)
class RerollOrder:
    """One done input to send again: where its copy is, where it goes back to, and what it will cost."""

    done_copy: Path
    record: InputRecord
    inbox: InboxConfig
    seed: int
    jobs: tuple[rules.PlannedJob, ...]
    prices: tuple[Price, ...] = ()  # one per job, as the budget will count it; empty: the table's

    @property
    def images(self) -> int:
        return sum(job.request.num_images for job in self.jobs)

    @property
    def usd(self) -> float:
        return round(sum(price.usd for price in self._prices()), 6)

    def priced(self, price: Callable[[RemixRequest, Path], Price]) -> RerollOrder:
        """This order at the account's prices: each job's quote where its route has one."""
        return dataclasses.replace(self, prices=tuple(price(job.request, self.done_copy) for job in self.jobs))

    def describe(self) -> str:
        parts = ", ".join(
            f"{job.rule} ({job.request.num_images} image(s), ${price.usd:.2f}{' quoted' * (price.source == 'quote')})"
            for job, price in zip(self.jobs, self._prices(), strict=True)
        )
        return f"{self.record.relpath}: {parts}, seed {self.seed}"

    def _prices(self) -> tuple[Price, ...]:
        return self.prices or tuple(table_price(job.request) for job in self.jobs)


def find_rerolls(
    config: Config, paths: Sequence[Path], *, seed: int | None = None, rng: random.Random | None = None
) -> tuple[list[RerollOrder], list[str]]:
    """What rerolling each path would send (a done copy, or a result's sidecar), and the paths that cannot be
    rerolled, each with why. `seed` None: a new random seed for each."""
    rng = rng or random.SystemRandom()
    inboxes = {str(inbox.path): inbox for inbox in config.inboxes}
    orders: list[RerollOrder] = []
    problems: list[str] = []
    journal = SqliteJournal(config.state_dir / JOURNAL_NAME, upgrades=False)  # the daemon's to bring up to date
    try:
        for path in paths:
            try:
                orders.append(_order(journal, inboxes, config, path.resolve(), seed=seed, rng=rng))
            except InputError as error:
                problems.append(f"{path}: {error.message} — {error.hint}")
    finally:
        journal.close()
    return orders, problems


def _order(
    journal: SqliteJournal,
    inboxes: dict[str, InboxConfig],
    config: Config,
    path: Path,
    *,
    seed: int | None,
    rng: random.Random,
) -> RerollOrder:
    record = _done_record(journal, config, path)
    inbox = inboxes.get(record.inbox)
    if inbox is None:
        raise InputError(f"its inbox {record.inbox} is no longer in the config", "add the inbox back to reroll it")
    if record.disposal == "deleted":
        raise InputError(
            "its inbox deletes inputs once done (after: delete): no copy of it is left to send",
            "drop the original into the inbox again with a STEM.yaml giving another seed (companions: optional)",
        )
    copy = _copy_to_send(inbox, record)
    chosen = rng.randint(0, MAX_SEED) if seed is None else seed
    try:
        # With the companions its claim read that are still beside it (send_rerolls takes them along): a
        # STEM.yaml asking for more images costs more (work/plan.py).
        beside = [(name, content) for name, content in record.companions if copy.with_name(name).is_file()]
        text, inbox_rules = companions.applied(record.relpath, copy, beside, config.rules_for(inbox))
        caption = read_caption(copy) if rules.uses("caption", inbox_rules) else ""
        planned = rules.plan(record.relpath, inbox_rules, caption=caption, size=oriented_size(copy), text=text)
        jobs = tuple(rules.reseeded(job, chosen) for job in planned)
    except ValidationError as error:
        raise InputError(f"seed {chosen} cannot be sent ({error.errors()[0]['msg']})", f"use 0..{MAX_SEED}") from None
    if not jobs:
        raise InputError("no rule of its inbox matches it now", "add a rule whose match covers it")
    return RerollOrder(copy, record, inbox, chosen, jobs)


def _done_record(journal: SqliteJournal, config: Config, path: Path) -> InputRecord:
    """The done input `path` names: its copy in a done folder, a result's sidecar, or its place in an inbox."""
    record = journal.done_input(disposed_to=str(path))
    if record is None and path.suffix == ".json":
        source = _sidecar_source(path)
        record = None if source is None else journal.done_input(source=source)
    if record is None:
        for inbox in config.inboxes:
            if path.is_relative_to(inbox.path) and path != inbox.path:
                record = journal.done_input(at=(str(inbox.path), path.relative_to(inbox.path).as_posix()))
                break
    if record is None:
        raise InputError(
            "not a done input",
            "name an input in a done folder or kept in its inbox (after: keep), or a result's sidecar",
        )
    return record


def _copy_to_send(inbox: InboxConfig, record: InputRecord) -> Path:
    """The file a reroll sends: the done copy (after: move), or the input where it was kept (after: keep)."""
    home = inbox.path / record.relpath
    if record.disposal == "kept":
        try:
            info = home.lstat()
        except OSError:
            raise InputError(f"it is no longer in its inbox ({home})", "put the file back there") from None
        if (info.st_size, info.st_mtime_ns) != (record.size, record.mtime_ns):
            raise InputError(f"{home} changed since it was done", "remixd sends it as a new input by itself")
        return home
    done_copy = Path(record.disposed_to or "")
    if not done_copy.is_file():
        raise InputError(f"its done copy {done_copy} is gone", "put the file back there, or drop it in the inbox")
    if home.exists() or home.is_symlink():
        raise InputError(f"{home} exists already", "wait until remixd has processed it, or move it aside")
    return done_copy


def _sidecar_source(path: Path) -> tuple[str, str, str] | None:
    try:
        source = json.loads(path.read_text(encoding="utf-8"))["source"]
        return str(source["inbox"]), str(source["relpath"]), str(source["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def send_rerolls(config: Config, orders: Sequence[RerollOrder]) -> Iterator[str]:
    """Record each reroll, then put its done copy back into its inbox, or wake a running daemon for a kept
    input; one line per order."""
    journal = SqliteJournal(config.state_dir / JOURNAL_NAME, upgrades=False)  # the daemon's to bring up to date
    try:
        for order in orders:
            # Recorded first: a running daemon may claim the file the moment it is back (a move keeps its
            # old mtime, so it is settled at once), and the claim must find the reroll.
            reroll_id = journal.add_reroll(order.record, order.seed)
            if order.record.disposal == "kept":
                yield _wake(config, order)
                continue
            home = order.inbox.path / order.record.relpath
            # Its companions go back first: an image back without its STEM.txt would be sent with another
            # prompt (and under `companions: required`, an image waits for them, never the other way round).
            moved: list[tuple[Path, Path]] = []
            try:
                home.parent.mkdir(parents=True, exist_ok=True)
                for name, _content in order.record.companions:
                    kept = order.done_copy.with_name(name)
                    if kept.is_file() and not home.with_name(name).exists():
                        shutil.move(kept, home.with_name(name))
                        moved.append((home.with_name(name), kept))
                shutil.move(order.done_copy, home)
            except OSError as error:
                for back, kept in moved:
                    shutil.move(back, kept)
                journal.cancel_reroll(reroll_id)
                reason = error.strerror or str(error)
                yield f"skipped {order.record.relpath}: cannot move {order.done_copy} to {home}: {reason}"
                continue
            yield f"rerolling {order.record.relpath} with seed {order.seed} (back in {order.inbox.path})"
    finally:
        journal.close()


def _wake(config: Config, order: RerollOrder) -> str:
    line = f"rerolling {order.record.relpath} with seed {order.seed} (kept in {order.inbox.path})"
    try:
        poke(config.state_dir)
    except OSError as error:  # recorded all the same: the daemon's next scan of the inbox claims it
        return f"{line}; a running remixd sends it at its next rescan ({error.strerror or error})"
    return line
