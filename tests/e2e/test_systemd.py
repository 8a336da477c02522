"""The units in systemd/ as systemd itself reads them, and README's install steps where this machine allows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.config.warnings import SERVICE_CONFIG_DIR, SERVICE_WRITABLE, config_warnings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("remixd.service", "remixd@.service")
USER_UNIT = "user/remixd.service"
INSTALLED = "/opt/remixd/bin/remixd"  # where README's step 1 installs the command the units run
MAX_EXPOSURE = 2.0

analyze = shutil.which("systemd-analyze") or ""
needs_systemd = pytest.mark.skipif(not analyze, reason="systemd-analyze is missing (.ci/run installs it)")


@pytest.fixture
def units(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's remixd (verify checks the binary exists)."""
    command = Path(sys.executable).with_name("remixd")
    assert command.exists(), "install remixd into the venv first (README's test command does)"
    copies = []
    for name in UNITS:
        text = (ROOT / "systemd" / name).read_text(encoding="utf-8")
        assert INSTALLED in text
        (tmp_path / name).write_text(text.replace(INSTALLED, str(command)), encoding="utf-8")
        copies.append(tmp_path / name)
    return copies


@needs_systemd
def test_units_pass_systemd_analyze_verify(units: list[Path]) -> None:
    result = subprocess.run(
        [analyze, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=units[0].parent,
    )
    assert result.returncode == 0, result.stderr
    assert "remixd" not in result.stderr, result.stderr  # warnings about our units count as failures


@needs_systemd
def test_the_user_unit_passes_systemd_analyze_verify_as_a_user_unit(tmp_path: Path) -> None:
    """`systemctl --user` reads it with %E as ~/.config and StateDirectory= under ~/.local/state."""
    command = Path(sys.executable).with_name("remixd")
    text = (ROOT / "systemd" / USER_UNIT).read_text(encoding="utf-8")
    assert INSTALLED in text
    unit = tmp_path / "remixd.service"
    unit.write_text(text.replace(INSTALLED, str(command)), encoding="utf-8")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert result.returncode == 0, result.stderr
    assert "remixd" not in result.stderr, result.stderr
    assert "Environment=REMIXD_CONFIG=%E/remixd/remixd.yaml\n" in text
    assert "LoadCredential=ideogram-api-key:%E/remixd/ideogram-api-key\n" in text
    assert "StateDirectory=remixd\n" in text and "User=" not in text
    assert re.search(r"^WantedBy=default.target$", text, re.MULTILINE)


@needs_systemd
@pytest.mark.parametrize("name", UNITS)
def test_units_are_locked_down(units: list[Path], name: str) -> None:
    unit = next(path for path in units if path.name == name)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=unit.parent,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE


@pytest.mark.parametrize("name", UNITS)
def test_units_promise_what_the_daemon_does(name: str) -> None:
    text = (ROOT / "systemd" / name).read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartPreventExitStatus=2 3",  # a config error, and a journal a restart cannot fix
        "User=remixd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ):
        assert line in text
    assert re.search(r"^ExecStartPre=\S+ check", text, re.MULTILINE)
    assert re.search(r"^WatchdogSec=\d+", text, re.MULTILINE)
    assert re.search(r"^LoadCredential=ideogram-api-key:", text, re.MULTILINE)
    assert re.search(r"^StateDirectory=remixd", text, re.MULTILINE)


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="systemd-sysusers/-tmpfiles missing (.ci/run installs systemd)",
)
def test_user_and_folders_steps_of_the_readme(tmp_path: Path) -> None:
    """README step 2, into a scratch root: the user exists and the folders have the promised modes."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        (etc / name).touch()
    sysusers = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(ROOT / "systemd/remixd.sysusers.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sysusers.returncode == 0, sysusers.stderr
    assert re.search(
        r"^remixd:x:\d+:\d+:.*:/var/lib/remixd:/usr/sbin/nologin$", (etc / "passwd").read_text(), re.MULTILINE
    )
    tmpfiles = subprocess.run(
        ["systemd-tmpfiles", "--create", f"--root={tmp_path}", str(ROOT / "systemd/remixd.tmpfiles.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tmpfiles.returncode == 0, tmpfiles.stderr
    inbox = tmp_path / "srv/remixd/inbox"
    assert inbox.is_dir() and oct(inbox.stat().st_mode & 0o7777) == "0o2770"
    for folder in ("outbox", "done", "failed"):
        assert (tmp_path / "srv/remixd" / folder).is_dir()


@pytest.mark.parametrize("name", UNITS)
def test_check_knows_where_the_units_let_remixd_write(name: str) -> None:
    """`remixd check` warns about folders outside these: they must be what the units really allow."""
    text = (ROOT / "systemd" / name).read_text(encoding="utf-8")
    instance = "/%i" if "@" in name else ""
    assert f"ReadWritePaths={SERVICE_WRITABLE[0]}{instance}\n" in text
    assert f"StateDirectory={SERVICE_WRITABLE[1].relative_to('/var/lib')}{instance}\n" in text
    assert f"REMIXD_CONFIG={SERVICE_CONFIG_DIR}/" in text


def test_the_readme_installs_what_the_units_point_at() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    steps = readme[readme.index("## Run as a service") :]
    for name in UNITS:
        text = (ROOT / "systemd" / name).read_text(encoding="utf-8")
        documentation = re.search(r"^Documentation=file://(\S+)$", text, re.MULTILINE)
        assert documentation, name
        assert f"README.md {documentation.group(1)}" in steps  # installed where Documentation= points
    assert "systemd-tmpfiles --create /usr/lib/tmpfiles.d/remixd.conf" in steps  # names its file
    assert "systemd-sysusers /usr/lib/sysusers.d/remixd.conf" in steps
    assert "systemd/remixd.yaml /etc/remixd/remixd.yaml" in steps
    assert f"systemd/{USER_UNIT} ~/.config/systemd/user/" in steps
    assert "systemctl --user enable --now remixd" in steps


def test_the_shipped_service_config_keeps_every_folder_where_the_unit_writes() -> None:
    config = load_config(ROOT / "systemd/remixd.yaml", env={"CREDENTIALS_DIRECTORY": "/nonexistent"})
    folders = [config.state_dir] + [
        folder
        for inbox in config.inboxes
        for folder in (inbox.path, inbox.output, inbox.done_dir, inbox.failed_dir)
        if folder is not None
    ]
    assert all(folder.is_absolute() for folder in folders)
    found = config_warnings(config, has_key=True, service_dir=ROOT / "systemd")
    assert not [warning for warning in found if "read-only" in warning], found
    assert config.api.sandbox is False


def test_an_instance_creates_its_own_folders_writable_by_the_group() -> None:
    text = (ROOT / "systemd/remixd@.service").read_text(encoding="utf-8")
    created = re.search(r"^ExecStartPre=\+/usr/bin/install -d -o remixd -g remixd -m 2770 (.+)$", text, re.MULTILINE)
    assert created, "remixd@NAME must create /srv/remixd/NAME's folders before its sandbox needs them"
    assert created.group(1).split() == [f"/srv/remixd/%i/{name}" for name in ("inbox", "outbox", "done", "failed")]
    tmpfiles = (ROOT / "systemd/remixd.tmpfiles.conf").read_text(encoding="utf-8")
    for name in ("inbox", "outbox", "done", "failed"):
        assert f"d /srv/remixd/{name} 2770 remixd remixd -" in tmpfiles  # the group may clean up
