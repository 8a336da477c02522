"""The one place the API key is looked up: its value, and where it came from for the hint of a refused key; and
the review page's token (`ui.token_file`).

The order: `api.api_key_file` if set, else `$CREDENTIALS_DIRECTORY/ideogram-api-key` (systemd
`LoadCredential=`) when present, else the variable named by `api.api_key_env`. The key is registered with
`secrets` the moment it is read, so it is scrubbed from every log line, error and file from then on (README,
"Odd and hostile inputs").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from remixd import secrets
from remixd.config.model import ApiConfig, UiConfig
from remixd.errors import ConfigError, Problem

CREDENTIAL_NAME = "ideogram-api-key"  # systemd LoadCredential=ideogram-api-key:/path
_KEY_FILE_FIX = "check the path and that remixd's user may read it (chmod 600, owned by that user)"


@dataclass(frozen=True)
class ApiKey:
    value: str | None  # None: nothing set where the key was looked for
    source: str  # where it was looked for, as a person would check it: a path or `$VARIABLE`

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r})"  # never the value, whatever prints this


def key_is_set(api: ApiConfig, env: Mapping[str, str]) -> bool:
    """Whether a key is where `find_api_key` looks, without reading it: a key file named (a warning of its
    own says when it cannot be read), a systemd credential, or a non-empty variable."""
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if api.api_key_file is not None or (credentials and (Path(credentials) / CREDENTIAL_NAME).is_file()):
        return True
    return bool(env.get(api.api_key_env, "").strip())


def find_api_key(api: ApiConfig, env: Mapping[str, str]) -> ApiKey:
    """The API key and its source. Raises ConfigError when a key file is named but cannot be read or is
    empty (never showing its content)."""
    key_file, location, source = api.api_key_file, "api.api_key_file", str(api.api_key_file)
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if key_file is None and credentials and (Path(credentials) / CREDENTIAL_NAME).is_file():
        key_file, location = Path(credentials) / CREDENTIAL_NAME, "$CREDENTIALS_DIRECTORY"
        source = f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} (systemd LoadCredential=)"
    if key_file is None:
        key = env.get(api.api_key_env, "").strip()
        secrets.register(key)
        return ApiKey(key or None, f"${api.api_key_env}")
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        problem = Problem(str(key_file), None, location, f"the key file cannot be read ({reason})", _KEY_FILE_FIX)
        raise ConfigError([problem]) from None
    secrets.register(key)
    if not key:
        raise ConfigError([Problem(str(key_file), None, location, "the key file is empty", "write the key into it")])
    return ApiKey(key, source)


MIN_UI_TOKEN_CHARS = 16


def read_ui_token(ui: UiConfig) -> str | None:
    """The review page's token from `ui.token_file` (None when unset), registered with `secrets` at once.

    Raises ConfigError when the file cannot be read or holds too short a token (never showing its content).
    """
    if ui.token_file is None:
        return None
    try:
        token = ui.token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        message = f"the token file cannot be read ({reason})"
        raise ConfigError([Problem(str(ui.token_file), None, "ui.token_file", message, _KEY_FILE_FIX)]) from None
    if len(token) < MIN_UI_TOKEN_CHARS:  # refused, never used: not registered (it would redact short words)
        message = f"the token is shorter than {MIN_UI_TOKEN_CHARS} characters"
        fix = "write a long random token into it, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        raise ConfigError([Problem(str(ui.token_file), None, "ui.token_file", message, fix)])
    secrets.register(token)
    return token
