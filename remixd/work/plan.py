"""What jobs one claimed input becomes: its rules, each rendered request, its price and where it goes, journalled
before anything is sent. An input planned before a crash keeps the jobs the journal promised, not today's config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from remixd import rules
from remixd.clock import Clock
from remixd.config.model import InboxConfig, Rule
from remixd.ideogram.client import RemixApi
from remixd.ideogram.routes import ROUTES
from remixd.journal.records import InputRecord, JobRecord, JobSpec, Journal, Reroll
from remixd.work import companions, paths
from remixd.work.destination import destination, job_fingerprint
from remixd.work.header import read_caption
from remixd.work.prepare import DEFAULT_MAX_UPLOAD_BYTES as DEFAULT_MAX_UPLOAD
from remixd.work.prepare import PreparedImage
from remixd.work.quotes import Quotes, table_price


class Planner:
    def __init__(self, journal: Journal, client: RemixApi, *, clock: Clock, sandbox: Callable[[], bool]) -> None:
        self._journal = journal
        self._client = client
        self._clock = clock
        self._sandbox = sandbox  # whether `client` is the built-in sandbox right now (a reload may change it)
        self._quotes = Quotes(client, clock)  # the account's own prices, kept per route and parameters

    def plan(
        self,
        record: InputRecord,
        source: Path,
        inbox_rules: Sequence[Rule],
        reroll: Reroll | None,
        *,
        inbox: InboxConfig,
        prepared: PreparedImage,  # what is sent; its size as shown (EXIF applied), for aspect_ratio: match_input
    ) -> list[JobRecord]:
        if record.jobs:  # planned before a crash: the journal, not today's config, says what was promised
            return list(record.jobs)
        sandbox = self._sandbox()
        text, inbox_rules = companions.applied(record.relpath, source, record.companions, inbox_rules)
        caption = read_caption(source) if rules.uses("caption", inbox_rules) else ""
        size = (prepared.width, prepared.height)
        planned_jobs = rules.plan(record.relpath, inbox_rules, caption=caption, size=size, text=text)
        if reroll is not None:
            planned_jobs = [rules.reseeded(job, reroll.seed) for job in planned_jobs]
        specs = []
        for planned in planned_jobs:
            # A request this file's shape makes the route refuse fails before paying: not worth a quote either.
            refused = planned.request.input_problem(*size) is not None
            price = self._quotes.price(planned.request, prepared) if not refused else table_price(planned.request)
            path = planned.request.endpoint_path()
            where = destination(self._client.endpoint_url(planned.request).removesuffix(path), sandbox=sandbox)
            specs.append(
                JobSpec(
                    rule=planned.rule,
                    fingerprint=job_fingerprint(planned.fingerprint, where),
                    endpoint=path,
                    request=planned.request.model_dump(mode="json", exclude_unset=True),
                    images=planned.request.num_images,
                    cost_usd=price.usd,
                    sandbox=sandbox,
                    cost_source=price.source,
                )
            )
        outputs = [
            (spec.rule, planned.request.model, spec.images) for spec, planned in zip(specs, planned_jobs, strict=True)
        ]
        unwritable = outputs and paths.too_long(record.relpath, inbox, outputs, now=self._clock.utcnow())
        if unwritable:  # its results could never be written: fail before paying for them
            raise unwritable
        return self._journal.add_jobs(record.id, specs) if specs else []


def upload_limit(record: InputRecord, inbox_rules: Sequence[Rule]) -> int:
    """The largest upload every route this input goes to takes (50 MB on v2, 10 MB on legacy and V_3)."""
    if record.jobs:
        models = [str(job.request.get("model", "V_2")) for job in record.jobs]
    else:
        models = [rule.request.model for rule in rules.match(record.relpath, inbox_rules)]
    return min((ROUTES[model].max_source_bytes for model in models if model in ROUTES), default=DEFAULT_MAX_UPLOAD)
