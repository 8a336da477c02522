"""The YAML config file -> `Config`, loaded once. Every problem is reported at once, located.

`config.reader` reads the YAML keeping the line of every value and turns pydantic's errors into located
problems; `config.model` holds the schema and the frozen objects; `config.state` checks the sections that say
where the journal is (all `remixd status` reads); `config.rule_build` checks the rules and their requests;
this module holds the other checks. Schema errors come first, section by section (a broken
`api:` does not hide a broken rule), then the cross-field checks: rule names, inbox rule lists, prompt
placeholders, and folders that would feed results back in.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remixd import output_name
from remixd.config.credentials import key_is_set
from remixd.config.model import ApiConfig, Config, InboxConfig, MetricsConfig, OutputsConfig, Rule, UiConfig
from remixd.config.reader import KeyPath
from remixd.config.rule_build import RuleBuilder, outputs_section
from remixd.config.state import InboxFolders, StateBuilder, is_mapping, read_config
from remixd.config.warnings import config_warnings
from remixd.rules import compile_glob


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate the config; raises ConfigError carrying every problem found, in line order.

    `env` is where the API key would come from: its absence is a warning, not an error (it may come later)."""
    config = read_config(path, lambda located, source, data: Builder(located, source).build(data))
    return dataclasses.replace(config, warnings=config_warnings(config, has_key=key_is_set(config.api, env)))


class Builder(StateBuilder):
    """Schema pass section by section, then the cross-field checks on what validated."""

    def build(self, data: Any) -> Config | None:
        if not self.is_document(data):
            return None
        located = self.located
        document, budget, journal, state_dir, parsed = self.sections(data)
        api = located.schema(ApiConfig, data.get("api") or {}, ("api",)) if is_mapping(data, "api") else None
        metrics = (
            located.schema(MetricsConfig, data.get("metrics") or {}, ("metrics",))
            if data.get("metrics") is not None and is_mapping(data, "metrics")
            else None
        )
        ui = self._ui(data)
        defaults = data.get("defaults") or {} if is_mapping(data, "defaults") else {}
        outputs = outputs_section(self.located, data, ()) or OutputsConfig()
        raw_rules: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
        written = [item["name"] for item in raw_rules if isinstance(item, dict) and isinstance(item.get("name"), str)]
        rules = RuleBuilder(self.located, self.base).rules(raw_rules, defaults)
        raw_inboxes: list[Any] = data["inboxes"] if isinstance(data.get("inboxes"), list) else []
        inboxes = [
            self._inbox(item, ("inboxes", index), parsed[index], written=written, outputs=outputs, rules=rules)
            for index, item in enumerate(raw_inboxes)
        ]
        if api is not None and api.api_key_file is not None:
            api = api.model_copy(update={"api_key_file": self.path(("api", "api_key_file"), str(api.api_key_file))})
        # Cross-checks run on every inbox that parsed, so a config with several problems shows them all.
        final_inboxes = self._feedback([(i, inbox) for i, inbox in enumerate(inboxes) if inbox], state_dir)
        valid_rules = tuple(rule for rule in rules if rule is not None)
        complete = len(final_inboxes) == len(inboxes) and len(valid_rules) == len(rules)
        if document is None or api is None or budget is None or journal is None or state_dir is None or not complete:
            return None
        return Config(
            source=self.source, api=api, state_dir=state_dir, budget=budget, inboxes=final_inboxes,
            rules=valid_rules, shutdown_grace_s=document.shutdown_grace_s, metrics=metrics, journal=journal,
            ui=ui,
        )  # fmt: skip

    def _ui(self, data: dict[str, Any]) -> UiConfig | None:
        """The review page, off when absent; another address than loopback only behind a token (README,
        "The review page": anyone who reaches the port could otherwise retry inputs and spend)."""
        if data.get("ui") is None or not is_mapping(data, "ui"):
            return None
        ui = self.located.schema(UiConfig, data.get("ui") or {}, ("ui",))
        if ui is None:
            return None
        if ui.token_file is not None:
            ui = ui.model_copy(update={"token_file": self.path(("ui", "token_file"), str(ui.token_file))})
        elif not ui.loopback:
            self.located.add(
                ("ui", "listen"),
                f"{ui.listen} is not a loopback address, and no ui.token_file guards the page",
                "listen on 127.0.0.1, or set ui.token_file to a file holding a long random token",
            )
        return ui

    def _inbox(
        self,
        item: Any,
        path: KeyPath,
        parsed: InboxFolders | None,
        *,
        written: list[str],
        outputs: OutputsConfig,
        rules: list[Rule | None],
    ) -> InboxConfig | None:
        """The inbox as `sections` parsed it (None: its problems are recorded), after the cross-checks, which
        read the raw values, so they run even when another key of this inbox is wrong."""
        located = self.located
        if not isinstance(item, dict):
            return None  # `sections` said so
        if item.get("after", "move") == "move" and item.get("done_dir") is None:
            located.add(
                (*path, "after"),
                "after: move needs done_dir",
                "add done_dir: ./done, or set after: keep or after: delete",
            )
        names = item.get("rules")
        if names == []:
            located.add(
                (*path, "rules"),
                "an empty list means no rule ever applies",
                "name rules, or remove the key to try all rules",
            )
        for index, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and name not in written:
                close = difflib.get_close_matches(name, written, n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(written)}"
                located.add((*path, "rules", index), f"no rule is named '{name}'", fix)
        ignore = item.get("ignore")
        for index, glob in enumerate(ignore if isinstance(ignore, list) else []):
            try:
                compile_glob(glob) if isinstance(glob, str) else None
            except ValueError as error:
                located.add((*path, "ignore", index), str(error), "globs are relative to the inbox, e.g. '*.xmp'")
        own_outputs = outputs.under(outputs_section(self.located, item, path))
        tried = names if isinstance(names, list) and names else written  # not a list: the schema pass reports it
        self._check_output_name(item, path, [rule for rule in rules if rule and rule.name in tried])
        if parsed is None:
            return None
        schema = parsed.schema
        return InboxConfig(
            path=parsed.path, output=parsed.output, done_dir=parsed.done_dir, failed_dir=parsed.failed_dir,
            after=schema.after, recursive=schema.recursive, settle_s=schema.settle_s, detect=schema.detect,
            rules=schema.rules if schema.rules is not None else tuple(dict.fromkeys(written)),
            ignore=schema.ignore, excluded_dirs=(), rescan_s=schema.rescan_s, poll_s=schema.poll_s,
            outputs=own_outputs, output_name=schema.output_name, companions=schema.companions,
            companion_wait_s=schema.companion_wait_s,
            rule_outputs=tuple((rule.name, own_outputs.under(rule.outputs)) for rule in rules if rule and rule.outputs),
        )  # fmt: skip

    def _check_output_name(self, item: dict[str, Any], path: KeyPath, inbox_rules: list[Rule]) -> None:
        """An output name template that could make two results of one input collide, or leave the output
        folder, is refused here rather than found out after paying."""
        template = item.get("output_name")
        if not isinstance(template, str):
            return  # absent (the default), or not text: the schema pass reports that
        several_images = any(rule.request.num_images > 1 for rule in inbox_rules)
        several_rules = any(rule.continue_ for rule in inbox_rules[:-1])
        for message, fix in output_name.problems(template, several_images=several_images, several_rules=several_rules):
            self.located.add((*path, "output_name"), message, fix)

    def _feedback(self, inboxes: list[tuple[int, InboxConfig]], state_dir: Path | None) -> tuple[InboxConfig, ...]:
        """Folders must not feed back: remixd's own folders may lie inside an inbox (then the watcher skips
        them) but may not be an inbox, nor contain one (results named after inputs could land in it)."""
        own: list[tuple[KeyPath, Path, str]] = [(("state_dir",), state_dir, "state folder")] if state_dir else []
        for index, inbox in inboxes:
            own.append((("inboxes", index, "output"), inbox.output, "output folder"))
            own.append((("inboxes", index, "failed_dir"), inbox.failed_dir, "failed folder"))
            if inbox.done_dir is not None:
                own.append((("inboxes", index, "done_dir"), inbox.done_dir, "done folder"))
        final: list[InboxConfig] = []
        for position, (index, inbox) in enumerate(inboxes):
            excluded: list[Path] = []
            for path, folder, what in own:
                if folder == inbox.path:
                    self.located.add(
                        path,
                        f"the {what} is the folder of inboxes[{index}] itself: remixd would process its own files",
                        "use a folder beside the inbox, e.g. ./outbox next to ./inbox",
                    )
                elif inbox.path.is_relative_to(folder):
                    self.located.add(
                        path,
                        f"the {what} {folder} contains the inbox inboxes[{index}] ({inbox.path})",
                        "use folders beside the inbox, not around it",
                    )
                elif folder.is_relative_to(inbox.path):
                    excluded.append(folder)
            for other_index, other in inboxes[:position]:
                where = ("inboxes", index, "path")
                if other.path == inbox.path:
                    self.located.add(
                        where, f"inboxes[{other_index}] already watches {inbox.path}", "merge the two inboxes"
                    )
                elif (other.recursive and inbox.path.is_relative_to(other.path)) or (
                    inbox.recursive and other.path.is_relative_to(inbox.path)
                ):
                    self.located.add(
                        where,
                        f"this inbox and inboxes[{other_index}] overlap and one is recursive: files "
                        "would be processed twice",
                        "use folders that do not contain each other",
                    )
            final.append(dataclasses.replace(inbox, excluded_dirs=tuple(dict.fromkeys(excluded))))
        return tuple(final)
