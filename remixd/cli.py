"""The `remixd` command: argparse in, exit statuses out. The only place that turns errors into exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from remixd import __version__, logs
from remixd.errors import AuthError, ConfigError, RemixdError

if TYPE_CHECKING:  # the models of every section: `remixd status` defines only those it reads
    from remixd.config.model import Config

log = logs.get_logger(__name__)

DEFAULT_CONFIG = "remixd.yaml"


class ExitStatus(IntEnum):
    OK = 0
    INPUT_FAILED = 1  # `remixd once`: at least one input failed
    CONFIG = 2  # the configuration (or the key it points at) is invalid: restarting will not help
    STARTUP = 3  # something outside the config stopped the start (journal unreadable, …): worth a restart


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # remixd has none: no scan of every package
    args = _parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    try:
        status = int(args.handler(args))
        sys.stdout.flush()  # here, so that a reader gone away is caught below, not at the interpreter's exit
    except BrokenPipeError:
        # `remixd status | head`: the reader has what it wanted. Without this, a traceback for the rest.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
    except ConfigError as error:
        _print_problems(error, sys.stderr)
        return ExitStatus.CONFIG
    except RemixdError as error:
        print(f"remixd: {error}", file=sys.stderr)
        return ExitStatus.STARTUP
    except KeyboardInterrupt:
        return ExitStatus.OK
    return status


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("REMIXD_CONFIG", DEFAULT_CONFIG)),
        help="the YAML config (default: $REMIXD_CONFIG, else ./remixd.yaml)",
    )
    common.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="auto: console on a terminal, JSON lines otherwise",
    )
    common.add_argument("--log-level", choices=logs.LEVELS, default="info")
    parser = argparse.ArgumentParser(
        prog="remixd", parents=[common], description="Watch folders and remix dropped images with Ideogram."
    )
    parser.add_argument("--version", action="version", version=f"remixd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("run", _run, "the daemon, in the foreground, until SIGTERM/SIGINT")
    command("once", _once, "process everything in the inboxes now, then exit (1 if any input failed)")
    check = command("check", _check, "validate the config and report every problem at once")
    check.add_argument("--api", action="store_true", help="also try the API key, without spending")
    status = command("status", _status, "what the journal knows: states, failures, spend, pauses")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    plan = command("plan", _plan, "what a run would send and cost now, without paying or writing anything")
    plan.add_argument("paths", nargs="*", type=Path, help="files or folders in the inboxes (default: all)")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("--quote", action="store_true", help="also ask Ideogram's price of v2 requests (free dry_run)")
    reroll = command("reroll", _reroll, "send done inputs again on purpose, with a new seed (the cost is shown first)")
    reroll.add_argument("paths", nargs="+", type=Path, help="inputs in a done folder, or results' sidecars")
    seeds = reroll.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="send with this seed")
    seeds.add_argument("--new-seed", action="store_true", help="a new random seed for each (the default)")
    reroll.add_argument("--yes", action="store_true", help="send without asking")
    retry = command("retry", _retry, "put failed inputs back into their inbox")
    retry.add_argument("paths", nargs="*", type=Path, help="failed inputs to retry (default: all)")
    sandbox = command("sandbox", _sandbox, "run the built-in Ideogram-compatible emulator standalone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=None, help="default: 8787")
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every remix request")
    sandbox.add_argument("--inflight-limit", type=int, default=10, help="images in progress at once")
    sandbox.add_argument(
        "--output-scale", type=float, default=1.0, help="result pixels per declared pixel, (0, 1] (default: 1)"
    )
    sandbox.add_argument(
        "--api-key", action="append", default=None, help="a key to accept (repeatable; default: any non-empty key)"
    )
    return parser


# -- commands -----------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Config:
    """The whole config, checked, its warnings logged for the commands that act on it."""
    from remixd.config.load import load_config  # the rules' models and routes: not on `remixd status`'s path

    config = load_config(args.config)
    for warning in config.warnings:
        log.warning("remixd.config.warning", warning=warning)
    return config


def _run(args: argparse.Namespace) -> ExitStatus:
    from remixd.daemon.lock import StateLock

    config = _load(args)
    with StateLock(config.state_dir):
        return _run_locked(config)


def _run_locked(config: Config) -> ExitStatus:
    from remixd.daemon import foreground

    foreground.run(config)
    return ExitStatus.OK


def _once(args: argparse.Namespace) -> ExitStatus:
    from remixd.daemon.lock import StateLock

    config = _load(args)
    with StateLock(config.state_dir):
        return _once_locked(config, args)


def _once_locked(config: Config, args: argparse.Namespace) -> ExitStatus:
    from remixd.daemon import foreground
    from remixd.daemon.progress import summary_line

    summary, service = foreground.once(config, args.log_format, args.log_level)
    print(summary_line(summary), file=sys.stderr)
    if service.gave_up is not None:
        print(f"remixd: stopped early, submissions are paused: {service.gave_up}", file=sys.stderr)
        return ExitStatus.CONFIG if service.gates.auth.is_paused else ExitStatus.INPUT_FAILED
    for reason in service.intake.paused:  # nothing was taken from it: a run that did not do its job
        print(f"remixd: {reason}, so nothing was taken from it — create or mount it and run again", file=sys.stderr)
    return ExitStatus.INPUT_FAILED if summary.failed or service.intake.paused else ExitStatus.OK


def _check(args: argparse.Namespace) -> ExitStatus:
    config = _load(args)
    if config.ui is not None:
        from remixd.config.credentials import read_ui_token

        read_ui_token(config.ui)  # an unreadable or short token fails here, not at the daemon's start
    if args.api and config.api.sandbox:
        print("api.sandbox: true, so there is no key to try: the sandbox accepts any")
    elif args.api:
        status = _check_key(config)
        if status is not ExitStatus.OK:
            return status
        print("the API accepted the key (nothing was spent)")
    from remixd.daemon.companions import companion_problems

    companions = companion_problems(config)
    for problem in companions:  # the config is valid; these images would fail, before anything is paid
        log.warning("remixd.companion.invalid", problem=problem)
    print(
        f"{config.source}: valid — {len(config.inboxes)} inbox(es), {len(config.rules)} rule(s)"
        + (", sandbox" if config.api.sandbox else "")
        + (f"; {len(companions)} image(s) would fail for their companions (above)" if companions else "")
    )
    return ExitStatus.OK


def _check_key(config: Config) -> ExitStatus:
    from remixd.daemon.connection import check_key_alone

    try:
        check_key_alone(config, os.environ)
    except AuthError as error:  # a key the API refuses makes the configuration invalid: exit 2
        print(f"remixd: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    return ExitStatus.OK


def _status(args: argparse.Namespace) -> ExitStatus:
    from remixd.clock import Clock
    from remixd.config.state_quick import load_state
    from remixd.daemon.report import print_status

    print_status(load_state(args.config), Clock(), as_json=args.json)  # a broken rule does not hide the journal
    return ExitStatus.OK


def _plan(args: argparse.Namespace) -> ExitStatus:
    from remixd.clock import Clock
    from remixd.daemon.plan import make_plan, render, with_quotes
    from remixd.daemon.pricing import account_prices
    from remixd.journal.sqlite import JOURNAL_NAME

    config = _load(args)
    plan = make_plan(config, config.state_dir / JOURNAL_NAME, Clock().utcnow().date(), args.paths)
    if args.quote:
        with account_prices(config) as price:
            plan = with_quotes(plan, price)
    if args.json:
        # Compact: json's indenting encoder is pure Python, a fifth of the plan's time for 10,000 files.
        print(json.dumps(plan.to_dict(), sort_keys=True, ensure_ascii=False))
    else:
        for line in render(plan):
            print(line)
    return ExitStatus.OK


def _reroll(args: argparse.Namespace) -> ExitStatus:
    from remixd.daemon.pricing import account_prices
    from remixd.daemon.reroll import find_rerolls, send_rerolls

    config = _load(args)
    orders, problems = find_rerolls(config, args.paths, seed=args.seed)
    for problem in problems:
        print(f"remixd: {problem}", file=sys.stderr)
    if problems:
        print("remixd: nothing was sent", file=sys.stderr)
        return ExitStatus.INPUT_FAILED
    if any(job.request.route.is_v2 for order in orders for job in order.jobs):
        with account_prices(config) as price:  # the price the budget will count, not the list's
            orders = [order.priced(price) for order in orders]
    for order in orders:
        print(order.describe())
    images, usd = sum(order.images for order in orders), sum(order.usd for order in orders)
    print(f"total: {len(orders)} input(s) -> {images} image(s) -> ${usd:.2f}, within the daily budget")
    if not args.yes:
        if not sys.stdin.isatty():
            print("remixd: pass --yes to send without asking", file=sys.stderr)
            return ExitStatus.INPUT_FAILED
        if input("send them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing was sent")
            return ExitStatus.OK
    for line in send_rerolls(config, orders):
        print(line)
    print("a running remixd sends them now; otherwise run `remixd once`")
    return ExitStatus.OK


def _retry(args: argparse.Namespace) -> ExitStatus:
    from remixd.daemon.operator import retry_failed

    config = _load(args)
    report = retry_failed(config, [path.resolve() for path in args.paths])
    for line in report.lines:
        print(line)
    for path in report.unknown:
        print(
            f"remixd: {path} is not a failed input — name a file in a failed folder or the inbox path that "
            "`remixd status` lists under recent failures",
            file=sys.stderr,
        )
    return ExitStatus.INPUT_FAILED if report.unknown or report.skipped else ExitStatus.OK


def _sandbox(args: argparse.Namespace) -> ExitStatus:
    from remixd.sandbox.options import SandboxOptions
    from remixd.sandbox.server import DEFAULT_PORT, serve_forever

    options = SandboxOptions(
        api_keys=frozenset(args.api_key or ()),
        latency_s=args.latency,
        inflight_limit=args.inflight_limit,
        output_scale=args.output_scale,
    )

    def ready(url: str) -> None:
        print(f"remixd sandbox listening on {url} (Ctrl-C to stop)", flush=True)

    return ExitStatus(
        serve_forever(args.host, DEFAULT_PORT if args.port is None else args.port, options, on_ready=ready)
    )


# -- output helpers -----------------------------------------------------------------------------------------


def _print_problems(error: ConfigError, stream: TextIO) -> None:
    for problem in error.problems:
        print(problem, file=stream)
    print(f"remixd: {error.hint}", file=stream)
