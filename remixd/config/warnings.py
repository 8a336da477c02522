"""The warnings about a config that is valid but deserves a look (shown by `remixd check`, logged at start)."""

from __future__ import annotations

import stat
from pathlib import Path

from remixd.config.model import Config

# Where the units in systemd/ let remixd write (ReadWritePaths=, StateDirectory=): under ProtectSystem=strict
# everything else is read-only, so a config they read (from SERVICE_CONFIG_DIR) must keep its folders here.
SERVICE_CONFIG_DIR = Path("/etc/remixd")
SERVICE_WRITABLE = (Path("/srv/remixd"), Path("/var/lib/remixd"))


def config_warnings(
    config: Config,
    *,
    has_key: bool,
    service_dir: Path = SERVICE_CONFIG_DIR,
    service_writable: tuple[Path, ...] = SERVICE_WRITABLE,
) -> tuple[str, ...]:
    """Things that deserve a look before they cost a run (shown by `remixd check`, logged at start): some
    work as they are, some (a missing inbox, no key) leave remixd waiting until they are fixed."""
    warnings: list[str] = []
    if not config.api.sandbox and not has_key:
        warnings.append(
            f"api: no API key: ${config.api.api_key_env} is not set and api.api_key_file is not named, so "
            f"`remixd run` and `remixd once` refuse to start — export {config.api.api_key_env}=…, set "
            "api.api_key_file, or set api.sandbox: true to try remixd without one"
        )
    config_dir = config.source.parent
    for index, inbox in enumerate(config.inboxes):
        if not inbox.path.is_relative_to(config_dir) and not inbox.path.is_dir():
            warnings.append(
                f"inboxes[{index}].path: {inbox.path} does not exist, so remixd waits for it and takes nothing "
                "from it until it appears — create or mount it"
            )
    if config.source.is_relative_to(service_dir):
        for key, folder in _written_folders(config):
            if not any(folder.is_relative_to(root) for root in service_writable):
                warnings.append(
                    f"{key}: {folder} is read-only when remixd runs as its systemd unit (ProtectSystem=strict) — "
                    f"write an absolute path under {' or '.join(map(str, service_writable))} "
                    f"(relative paths are relative to {config_dir})"
                )
    key_file = config.api.api_key_file
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
        except OSError as error:
            warnings.append(f"api.api_key_file: {key_file} cannot be read yet ({error.strerror})")
        else:
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                warnings.append(f"api.api_key_file: {key_file} is readable by others; run chmod 600 {key_file}")
    budget = config.budget
    if not config.api.sandbox and budget.max_usd_per_day is None and budget.max_images_per_day is None:
        warnings.append("budget: none set, so unattended runs may spend without limit; set max_usd_per_day")
    return tuple(warnings)


def _written_folders(config: Config) -> list[tuple[str, Path]]:
    """Every folder remixd writes into (an inbox too: inputs are moved out of it), by its key."""
    folders = [("state_dir", config.state_dir)]
    for index, inbox in enumerate(config.inboxes):
        for key in ("path", "output", "done_dir", "failed_dir"):
            folder = getattr(inbox, key)
            if folder is not None:
                folders.append((f"inboxes[{index}].{key}", folder))
    return folders
