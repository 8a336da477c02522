"""`remixd plan`: the run's own scan, rules and journal, nothing paid and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.daemon.plan import make_plan, render
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import (
    POSTER,
    TEST_KEY,
    Daemon,
    approx,
    make_image,
    make_service,
    run_cli,
    sidecars,
    wait_for,
    write_config,
)

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
SQUARE = {
    "name": "square",
    "match": ["*-square.*"],
    "continue": True,
    "request": {"prompt": "A postcard of {stem}", "model": "V_3", "aspect_ratio": "1x1", "rendering_speed": "TURBO"},
}


def _plan(config: Path, *paths: Path) -> dict:  # type: ignore[type-arg]
    loaded = load_config(config)
    plan = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date(), list(paths))
    return plan.to_dict()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def test_the_plan_shows_the_requests_the_run_then_sends(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, rules=[SQUARE, POSTER], inbox={"recursive": True})
    make_image(tmp_path / "inbox/mug-square.jpg")
    make_image(tmp_path / "inbox/sub/lamp.png")
    (tmp_path / "inbox/notes.pdf").write_bytes(b"%PDF-1.4 not an image")
    make_image(tmp_path / "inbox/shelf.gif", fmt="GIF")  # an image no rule matches

    plan = _plan(config)

    assert sandbox.received == []  # nothing was sent, not even a quote
    rows = {(row["relpath"], row["rule"]): row for row in plan["rows"]}
    assert set(rows) == {
        ("mug-square.jpg", "square"), ("mug-square.jpg", "poster"), ("sub/lamp.png", "poster"),
        ("notes.pdf", None), ("shelf.gif", None),
    }  # fmt: skip
    assert "not an image remixd can read" in rows["notes.pdf", None]["reason"]
    assert rows["shelf.gif", None]["reason"] == "no rule matches it (rules tried: square, poster)"
    assert rows["mug-square.jpg", "square"]["endpoint"] == sandbox.base_url + "/v1/ideogram-v3/remix"
    assert (rows["mug-square.jpg", "square"]["images"], rows["mug-square.jpg", "square"]["usd"]) == (1, 0.03)
    assert plan["totals"] == {
        "square": {"inputs": 1, "images": 1, "usd": 0.03},
        "poster": {"inputs": 2, "images": 2, "usd": 0.16},
    }
    assert plan["total"] == {"inputs": 2, "images": 3, "usd": 0.19, "within_budget": 3}

    make_service(config, "once", ENV).run()

    sent = {
        (d["source"]["relpath"], d["rule"]["name"]): (d["api"]["endpoint"], d["api"]["request"])
        for d in sidecars(tmp_path / "outbox")
    }
    assert sent == {key: (row["endpoint"], row["request"]) for key, row in rows.items() if row["rule"]}


def test_what_the_journal_knows(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    make_image(tmp_path / "inbox/kept.jpg")
    make_service(config, "once", ENV).run()
    (tmp_path / "inbox/copy").mkdir()
    # The same content under the same name in another folder: the same request, so a duplicate.
    (tmp_path / "inbox/copy/kept.jpg").write_bytes((tmp_path / "inbox/kept.jpg").read_bytes())
    make_image(tmp_path / "inbox/fresh.jpg", color=(1, 2, 3))
    paid, before = len(sandbox.received), _tree(tmp_path)

    plan = _plan(config)
    assert _tree(tmp_path) == before  # not even SQLite's -wal and -shm files
    states = {row["relpath"]: row["journal"] for row in plan["rows"]}

    assert states == {"kept.jpg": "done", "fresh.jpg": "new"}  # not recursive: copy/ is not an input
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep", "recursive": True})
    states = {row["relpath"]: (row["journal"], row["usd"]) for row in _plan(config)["rows"]}
    assert states == {"kept.jpg": ("done", 0.0), "fresh.jpg": ("new", 0.08), "copy/kept.jpg": ("duplicate", 0.0)}
    assert len(sandbox.received) == paid


@pytest.mark.parametrize(("after", "done_in"), [("keep", "inbox"), ("move", "done")])
def test_an_input_with_a_reroll_waiting_shows_the_reroll_and_its_price(
    tmp_path: Path, sandbox: SandboxServer, after: str, done_in: str
) -> None:
    """Kept in its inbox, the journal has it done; moved back by the reroll, its content is a duplicate: the
    run sends it again all the same, paid, with the reroll's seed."""
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": after})
    make_image(tmp_path / "inbox/kept.jpg")
    make_service(config, "once", ENV).run()
    status, said = run_cli("reroll", "-c", str(config), "--seed", "777", "--yes", str(tmp_path / done_in / "kept.jpg"))
    assert status == 0, said
    loaded = load_config(config)

    plan = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())

    [row] = plan.rows
    assert (row.journal, row.images, row.usd, row.request and row.request["seed"]) == ("reroll", 1, 0.08, 777)
    assert plan.to_dict()["total"] == {"inputs": 1, "images": 1, "usd": 0.08, "within_budget": 1}
    assert any("kept.jpg  [poster]  reroll waiting  1 image, $0.08" in line for line in render(plan))
    make_service(config, "once", ENV).run()  # and the run sends just that
    assert [r.fields["seed"] for r in sandbox.received if r.path == "/remix"] == [12345, 777]
    assert [row["journal"] for row in _plan(config)["rows"]] == (["done"] if after == "keep" else [])


def test_a_compacted_input_is_still_known_done_and_its_content_a_duplicate(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep", "recursive": True})
    make_image(tmp_path / "inbox/kept.jpg")
    make_service(config, "once", ENV).run()
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:  # as if keep_days had passed: the input is only its path, its result's key and its files now
        assert journal.compact(datetime.now(UTC) + timedelta(days=1), 10) == 1
        assert journal.unfinished() == [] and journal.failed_inputs() == []
    finally:
        journal.close()
    (tmp_path / "inbox/copy").mkdir()
    (tmp_path / "inbox/copy/kept.jpg").write_bytes((tmp_path / "inbox/kept.jpg").read_bytes())

    states = {row["relpath"]: (row["journal"], row["usd"]) for row in _plan(config)["rows"]}

    assert states == {"kept.jpg": ("done", 0.0), "copy/kept.jpg": ("duplicate", 0.0)}


def test_totals_against_what_is_left_of_todays_budget(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, extra={"budget": {"max_usd_per_day": 0.25}})
    make_image(tmp_path / "inbox/first.jpg")
    make_service(config, "once", ENV).run()  # $0.08 of $0.25 spent
    for n in range(3):
        make_image(tmp_path / f"inbox/more-{n}.jpg", color=(n, 0, 0))

    loaded = load_config(config)
    plan = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())
    lines = list(render(plan))

    assert [row.within_budget for row in plan.rows] == [True, True, False]
    assert lines[-1] == (
        "total: 3 inputs -> 3 images -> $0.24; spent today $0.08 of $0.25: the budget stops after 2 of 3 requests"
    )


def test_a_rules_total_is_summed_exactly_and_a_budget_of_exactly_five_requests_admits_five(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    # Six $0.08 requests added as floats make $0.48000000000000004: a total no bill shows.
    config = write_config(tmp_path, sandbox.base_url, extra={"budget": {"max_usd_per_day": 0.40}})
    for n in range(6):
        make_image(tmp_path / f"inbox/item-{n}.jpg", color=(n, 0, 0))

    plan = _plan(config)

    assert plan["totals"] == {"poster": {"inputs": 6, "images": 6, "usd": 0.48}}
    assert plan["total"]["usd"] == 0.48
    assert [row["within_budget"] for row in plan["rows"]] == [True] * 5 + [False]


def test_todays_spend_a_rebuild_summed_into_its_day_counts_against_the_budget(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """The journal lost and rebuilt from the sidecars the same day: today's $0.08 is in the day's total, which
    the budget counts, and so does the plan."""
    config = write_config(tmp_path, sandbox.base_url, extra={"budget": {"max_usd_per_day": 0.25}})
    make_image(tmp_path / "inbox/first.jpg")
    make_service(config, "once", ENV).run()
    loaded = load_config(config)
    for lost in loaded.state_dir.glob(JOURNAL_NAME + "*"):
        lost.unlink()
    make_service(config, "once", ENV).run()  # rebuilds the journal from the sidecar; nothing is sent
    assert sandbox.ledger.requests == 1
    make_image(tmp_path / "inbox/more.jpg", color=(9, 0, 0))

    plan = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())

    assert plan.spent_images == 1 and plan.spent_usd == approx(0.08)
    assert list(render(plan))[-1] == (
        "total: 1 inputs -> 1 images -> $0.08; spent today $0.08 of $0.25: all fit in today's budget"
    )


def test_paths_narrow_the_plan_and_a_path_outside_every_inbox_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, inbox={"recursive": True})
    make_image(tmp_path / "inbox/a/one.jpg")
    make_image(tmp_path / "inbox/b/two.jpg")

    rows = _plan(config, tmp_path / "inbox/b", tmp_path / "elsewhere.jpg")["rows"]

    assert [(row["relpath"], row["journal"]) for row in rows] == [
        ("b/two.jpg", "new"), (str(tmp_path / "elsewhere.jpg"), "none")
    ]  # fmt: skip
    assert "is in no inbox" in rows[1]["reason"]


@pytest.mark.e2e
def test_plan_works_beside_a_running_daemon(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"settle_s": 30})
    sandbox.set_faults(latency_s=20.0)  # hold the daemon's request in flight while the plan runs
    first = make_image(tmp_path / "inbox/first.jpg")
    os.utime(first, (first.stat().st_atime - 60, first.stat().st_mtime - 60))  # settled before the start
    daemon = Daemon(config, ENV)
    wait_for(lambda: [row["journal"] for row in _plan(config)["rows"]] == ["in progress"], message="the daemon's claim")
    make_image(tmp_path / "inbox/new.jpg", color=(9, 9, 9))  # settles long after this test

    shown = subprocess.run(
        [sys.executable, "-m", "remixd", "plan", "--json", "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **ENV},
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    states = {row["relpath"]: row["journal"] for row in json.loads(shown.stdout)["rows"]}
    assert states == {"first.jpg": "in progress", "new.jpg": "new"}
    daemon.reap()


def test_quote_asks_ideogram_s_own_price_for_v2_requests_and_pays_nothing(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remixd.daemon.plan import with_quotes
    from remixd.daemon.pricing import account_prices

    monkeypatch.setenv("IDEOGRAM_API_KEY", TEST_KEY)
    v2 = {"name": "v2", "match": ["*-v2.*"], "request": {"prompt": "A poster of {stem}", "model": "ideogram-3"}}
    config = write_config(tmp_path, sandbox.base_url, rules=[v2, POSTER])
    make_image(tmp_path / "inbox/mug-v2.jpg")
    make_image(tmp_path / "inbox/lamp.jpg")
    loaded = load_config(config)
    plan = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())

    with account_prices(loaded) as price:
        quoted = with_quotes(plan, price)

    quotes = {row.relpath: row.quote for row in quoted.rows}
    assert quotes["lamp.jpg"] is None  # legacy /remix has no dry_run
    assert quotes["mug-v2.jpg"] is not None and quotes["mug-v2.jpg"].startswith("$"), quotes
    assert [received.path for received in sandbox.received] == ["/v2/image/remix/ideogram-3"]
    assert sandbox.ledger.usd == 0
