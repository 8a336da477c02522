"""`ui:`: the review page is off when absent, loopback unless a token file guards it, and `remixd check` says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixd import secrets
from remixd.cli import main
from remixd.config.credentials import read_ui_token
from remixd.config.load import load_config
from remixd.errors import ConfigError
from tests.unit.config.test_config import MINIMAL, one_problem, write

TOKEN = "a-long-random-review-token-6f2d"  # noqa: S105 - the test's own token


def test_the_page_is_off_when_absent(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).ui is None


@pytest.mark.parametrize("listen", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.2:0"])
def test_loopback_needs_no_token(tmp_path: Path, listen: str) -> None:
    config = load_config(write(tmp_path, MINIMAL + f'ui:\n  listen: "{listen}"\n'))
    assert config.ui is not None and config.ui.loopback and config.ui.token_file is None


def test_the_default_address_is_loopback(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "ui: {}\n"))
    assert config.ui is not None and (config.ui.host, config.ui.port) == ("127.0.0.1", 8765)


@pytest.mark.parametrize("listen", ["0.0.0.0:8765", "192.168.1.5:8765", "review.example:80", "[::]:8765"])
def test_another_address_without_a_token_is_refused(tmp_path: Path, listen: str) -> None:
    path = write(tmp_path, MINIMAL + f'ui:\n  listen: "{listen}"\n')
    assert one_problem(path) == (
        f"{path}:12: ui.listen: {listen} is not a loopback address, and no ui.token_file guards the page — "
        "listen on 127.0.0.1, or set ui.token_file to a file holding a long random token"
    )
    assert main(["check", "-c", str(path)]) == 2


def test_another_address_with_a_token_is_allowed_and_the_token_kept_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ui-token").write_text(TOKEN + "\n")
    path = write(tmp_path, MINIMAL + 'ui:\n  listen: "0.0.0.0:8765"\n  token_file: ui-token\n')
    config = load_config(path)
    assert config.ui is not None and config.ui.token_file == tmp_path / "ui-token"
    assert read_ui_token(config.ui) == TOKEN
    assert secrets.scrub(f"token {TOKEN}") == f"token {secrets.REDACTED}"
    assert main(["check", "-c", str(path)]) == 0
    assert TOKEN not in capsys.readouterr().out


@pytest.mark.parametrize(("content", "message"), [(None, "cannot be read"), ("short", "shorter than 16")])
def test_a_missing_or_short_token_fails_check(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "ui-token").write_text(content)
    path = write(tmp_path, MINIMAL + 'ui:\n  listen: "0.0.0.0:8765"\n  token_file: ui-token\n')
    config = load_config(path)
    assert config.ui is not None
    with pytest.raises(ConfigError, match=message):
        read_ui_token(config.ui)
    assert main(["check", "-c", str(path)]) == 2


@pytest.mark.parametrize("listen", ["8765", "127.0.0.1", "127.0.0.1:port", "[::1:8765"])
def test_a_malformed_address_is_a_located_problem(tmp_path: Path, listen: str) -> None:
    path = write(tmp_path, MINIMAL + f'ui:\n  listen: "{listen}"\n')
    assert one_problem(path).startswith(f"{path}:12: ui.listen:")
