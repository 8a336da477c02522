"""The part of the config that says where the journal is and what it is measured against: all `remixd status`
reads, and where every other command's load begins (`config.load.Builder` builds on `StateBuilder`).

The top level, `state_dir`, `budget`, `journal` and each inbox's own keys and folders, checked exactly as a whole
load checks them, every problem there at once. The rules, `api:` and the cross-field checks are not read here:
their models and the route table are most of the time a whole load takes (README "Benchmarks": status's time
is its imports), and a broken rule does not make what the journal says wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from remixd.config.reader import ConfigFile, KeyPath
from remixd.config.state_model import BudgetSchema, DocumentSchema, InboxSchema, JournalSchema
from remixd.config.state_values import BudgetConfig, JournalConfig, StateConfig, resolved
from remixd.errors import ConfigError

_Built = TypeVar("_Built")


def load_state(path: Path) -> StateConfig:
    """Only what `remixd status` reads of the config; raises ConfigError carrying every problem found there, in
    line order. A problem elsewhere in the file is left to `remixd check` (and stops `run` and `once`)."""
    return read_config(path, lambda located, source, data: StateBuilder(located, source).state(data))


def read_config(path: Path, build: Callable[[ConfigFile, Path, Any], _Built | None]) -> _Built:
    """The file at `path` read, then built by `build(located, source, data)` unless it could not be read;
    raises ConfigError carrying every problem either found."""
    located = ConfigFile(str(path))
    data = located.read(path)
    built = None
    if not located.problems:
        built = build(located, path.expanduser().resolve(), data)
    if located.problems or built is None:
        raise ConfigError(sorted(located.problems, key=lambda problem: problem.line or 0))
    return built


class InboxFolders(NamedTuple):
    """One inbox as its schema validated it, its folders absolute."""

    schema: InboxSchema
    path: Path
    output: Path
    done_dir: Path | None
    failed_dir: Path


class Sections(NamedTuple):
    """What `StateBuilder.sections` read, each None where it has a problem (then recorded)."""

    document: DocumentSchema | None
    budget: BudgetConfig | None
    journal: JournalConfig | None
    state_dir: Path | None
    inboxes: list[InboxFolders | None]  # one per item of `inboxes:`


class StateBuilder:
    """The sections every command reads, problems recorded in `located`; paths relative to the config's folder."""

    def __init__(self, located: ConfigFile, source: Path) -> None:
        self.located = located
        self.source = source
        self.base = source.parent

    def state(self, data: Any) -> StateConfig | None:
        if not self.is_document(data):
            return None
        document, budget, journal, state_dir, inboxes = self.sections(data)
        folders = [(inbox.path, inbox.failed_dir) for inbox in inboxes if inbox is not None]
        if document is None or budget is None or journal is None or state_dir is None or len(folders) < len(inboxes):
            return None
        return StateConfig(self.source, state_dir, budget, journal, tuple(folders))

    def is_document(self, data: Any) -> bool:
        """Whether the top level is a mapping (else that problem is recorded)."""
        if isinstance(data, dict):
            return True
        kind = "list" if isinstance(data, list) else type(data).__name__
        self.located.add(
            (), f"the top level must be a mapping of keys (got a {kind})", "start from config.example.yaml"
        )
        return False

    def sections(self, data: dict[str, Any]) -> Sections:
        located = self.located
        document = located.schema(DocumentSchema, data, ())
        budget_schema = (
            located.schema(BudgetSchema, data.get("budget") or {}, ("budget",)) if is_mapping(data, "budget") else None
        )
        journal_schema = (
            located.schema(JournalSchema, data.get("journal") or {}, ("journal",))
            if is_mapping(data, "journal")
            else None
        )
        budget = BudgetConfig(**budget_schema.model_dump()) if budget_schema is not None else None
        journal = JournalConfig(**journal_schema.model_dump()) if journal_schema is not None else None
        state_dir = self.path(("state_dir",), data.get("state_dir", "./state"))
        raw_inboxes: list[Any] = data["inboxes"] if isinstance(data.get("inboxes"), list) else []
        inboxes = [self._inbox_folders(item, ("inboxes", index)) for index, item in enumerate(raw_inboxes)]
        return Sections(document, budget, journal, state_dir, inboxes)

    def path(self, path: KeyPath, value: Any) -> Path | None:
        if not isinstance(value, str):
            return None  # the schema pass reports it
        try:
            return resolved(self.base, value)
        except (OSError, ValueError, RuntimeError) as error:  # NUL bytes, symlink loops
            self.located.add(path, f"not a usable path ({error})", "write a plain folder path")
            return None

    def _inbox_folders(self, item: Any, path: KeyPath) -> InboxFolders | None:
        if not isinstance(item, dict):
            self.located.add(
                path, "an inbox must be a mapping with path:, output:, failed_dir: …", "see config.example.yaml"
            )
            return None
        schema = self.located.schema(InboxSchema, item, path)
        if schema is None:
            return None
        folders = {
            key: self.path((*path, key), getattr(schema, key)) for key in ("path", "output", "done_dir", "failed_dir")
        }
        inbox, output, failed = folders["path"], folders["output"], folders["failed_dir"]
        if inbox is None or output is None or failed is None:
            return None  # its problems are recorded; the whole load's cross-checks still look at this inbox
        return InboxFolders(schema, inbox, output, folders["done_dir"], failed)


def is_mapping(data: dict[str, Any], key: str) -> bool:
    return data.get(key) is None or isinstance(data.get(key), dict)
