"""`remixd check` warns about configs that load but cannot work as they are."""

from __future__ import annotations

from pathlib import Path

from remixd.config.load import load_config
from remixd.config.warnings import config_warnings
from tests.unit.config.test_config import MINIMAL, write

BUDGET = "budget: {max_usd_per_day: 5}\n"


def test_no_api_key_where_one_is_needed_is_warned(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + BUDGET)
    assert load_config(path, env={}).warnings == (
        "api: no API key: $IDEOGRAM_API_KEY is not set and api.api_key_file is not named, so `remixd run` and "
        "`remixd once` refuse to start — export IDEOGRAM_API_KEY=…, set api.api_key_file, or set api.sandbox: "
        "true to try remixd without one",
    )
    assert load_config(path, env={"IDEOGRAM_API_KEY": "k-1"}).warnings == ()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "ideogram-api-key").write_text("k-2", encoding="utf-8")
    assert load_config(path, env={"CREDENTIALS_DIRECTORY": str(credentials)}).warnings == ()
    assert load_config(write(tmp_path, MINIMAL + "api: {sandbox: true}\n"), env={}).warnings == ()


def test_a_missing_inbox_outside_the_config_folder_is_warned(tmp_path: Path) -> None:
    mount = tmp_path / "nas" / "inbox"
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    path = write(config_dir, MINIMAL.replace("path: ./inbox", f"path: {mount}") + BUDGET)
    env = {"IDEOGRAM_API_KEY": "k-1"}
    assert load_config(path, env=env).warnings == (
        f"inboxes[0].path: {mount} does not exist, so remixd waits for it and takes nothing from it until it "
        "appears — create or mount it",
    )
    mount.mkdir(parents=True)
    assert load_config(path, env=env).warnings == ()
    # one inside the config's folder is created at start (the quick start's ./inbox): nothing to warn about
    assert load_config(write(config_dir, MINIMAL + BUDGET), env=env).warnings == ()


def test_relative_folders_of_a_service_config_that_the_unit_cannot_write_are_warned(tmp_path: Path) -> None:
    etc, srv = tmp_path / "etc/remixd", tmp_path / "srv/remixd"
    etc.mkdir(parents=True)
    text = MINIMAL.replace("path: ./inbox", f"path: {srv}/inbox").replace(
        "failed_dir: ./failed", f"failed_dir: {srv}/f"
    )
    config = load_config(write(etc, text + BUDGET), env={"IDEOGRAM_API_KEY": "k-1"})
    found = config_warnings(config, has_key=True, service_dir=etc, service_writable=(srv,))
    fix = f"write an absolute path under {srv} (relative paths are relative to {etc})"
    assert found == (
        f"inboxes[0].path: {srv}/inbox does not exist, so remixd waits for it and takes nothing from it until it "
        "appears — create or mount it",
        f"state_dir: {etc}/state is read-only when remixd runs as its systemd unit (ProtectSystem=strict) — {fix}",
        f"inboxes[0].output: {etc}/outbox is read-only when remixd runs as its systemd unit (ProtectSystem=strict)"
        f" — {fix}",
        f"inboxes[0].done_dir: {etc}/done is read-only when remixd runs as its systemd unit (ProtectSystem=strict)"
        f" — {fix}",
    )
