"""The ``reasoning-panel`` command line."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from callbacks.core.headroom import Threshold
from callbacks.core.state import (
    TIERS,
    State,
    StateError,
    describe_caps,
    describe_preset,
    parse_min_remaining,
    state_to_dict,
)
from callbacks.launcher import (
    config_models,
    master_key,
    proxy_command,
    proxy_environment,
    read_proxy_info,
    write_proxy_info,
)
from callbacks.stores.base import REDIS_URL_ENV, Conflict, Store, StoreDown, StoreError
from callbacks.stores.statefile import default_home, ensure_private_dir, parse_state_text
from callbacks.stores.store import open_store


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home).expanduser().resolve() if args.home else default_home()


def _store(args: argparse.Namespace) -> Store:
    """The files of --home, or Redis with --redis URL / $REASONING_PANEL_REDIS_URL."""
    return open_store(_home(args), getattr(args, "redis", None))


def _count(text: str) -> int:
    """argparse type: a whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _version(text: str) -> int | str:
    """argparse type: a state version (Redis: a number; files: a content hash)."""
    text = text.strip().removeprefix("v")
    return int(text) if text.isdigit() else text


def _err(message: str) -> None:
    print(f"reasoning-panel: {message}", file=sys.stderr)


def cmd_proxy(args: argparse.Namespace) -> int:
    home = _home(args)
    config = Path(args.config).expanduser()
    if not config.is_file():
        _err(f"config file {config} not found")
        return 2
    try:
        store = _store(args)
        note = store.ensure().note
    except StoreDown as exc:  # not an outage: the workers route from their last snapshot
        note = ""
        _err(f"warning: {exc}; the proxy routes with its last snapshot (else the env "
             "defaults) and catches up when Redis is back")
    except StoreError as exc:
        _err(str(exc))
        return 2
    except StateError as exc:
        note = ""
        _err(f"warning: {exc}; the proxy routes with the env defaults until it is fixed")
    mode = stat.S_IMODE(ensure_private_dir(home).stat().st_mode)
    if mode & 0o077:  # the files are 0600 anyway; an existing folder is the user's to change
        _err(f"warning: {home} is open to other users (mode {mode:o}); "
             f"`chmod 700 {home}` keeps the state and the event log private")
    key = master_key(home, config)
    env = proxy_environment(home, key)
    env.update(store.proxy_env(), REASONING_PANEL_WORKERS=str(args.num_workers))
    write_proxy_info(home, config, args.host, args.port)
    url = f"http://{args.host}:{args.port}"
    shown = key.value if key.source != "LITELLM_MASTER_KEY" else "$LITELLM_MASTER_KEY"
    print(
        f"reasoning-panel: LiteLLM proxy on {url} with config {config}\n"
        f"  state      : {store.where}{f' ({note})' if note else ''}\n"
        f"  master key : from {key.source}\n"
        f"  Claude Code: ANTHROPIC_BASE_URL={url} ANTHROPIC_AUTH_TOKEN={shown} claude",
        file=sys.stderr,
        flush=True,
    )
    cmd = proxy_command(config, args.host, args.port, args.num_workers)
    os.execve(cmd[0], cmd, env)  # the proxy replaces this process: signals reach it directly


def cmd_standin(args: argparse.Namespace) -> int:
    from app.standin.server import main as standin_main

    standin_main(["--host", args.host, "--port", str(args.port),
                  *(["--strict"] if args.strict else [])])
    return 0


def describe(state: State) -> str:
    """A human summary of a state."""
    lines = [
        f"routing: {'on' if state.routing else 'off'}",
        f"pin:     {state.pin or 'off'}",
        f"routed:  {', '.join(state.route_models)}",
        "tiers:",
    ]
    for tier in TIERS:
        target = state.tiers[tier]
        params = f"  {json.dumps(dict(target.params))}" if target.params else ""
        marker = "  <- pinned" if state.pin == tier else ""
        chain = f"  then {', '.join(target.fallbacks)}" if target.fallbacks else ""
        limit = (f"  (max {target.max_input_tokens} input tokens)"
                 if target.max_input_tokens is not None else "")
        headroom = (f"  (headroom: {headroom_text(target.min_remaining)})"
                    if target.min_remaining else "")
        lines.append(f"  {tier:<7} {target.model}{params}{chain}{limit}{headroom}{marker}")
    if state.long_context:
        lines.append(f"long context: {state.long_context}")
    det = state.detection
    lines.append(
        f"budgets: < {det.low_below} low, < {det.medium_below} medium, else high;"
        f" ultrathink {'on' if det.ultrathink else 'off'}"
    )
    lines.append(f"caps:    {describe_caps(state.caps)}")
    if state.presets:
        lines.append(f"presets: {', '.join(state.presets)}")
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        stored = store.ensure()
    except (StateError, StoreError) as exc:
        down = isinstance(exc, StoreError)
        if args.json:
            print(json.dumps({"path": store.where, "backend": store.backend, "valid": False,
                              "error": str(exc), "down": down}))
        else:
            _err(str(exc) if down else f"{store.where} is invalid: {exc}")
        return 1
    fleet = store.status()
    if args.json:
        print(json.dumps({"path": store.where, "backend": store.backend, "valid": True,
                          "state": state_to_dict(stored.state), **fleet.as_json()}, indent=2))
    else:
        print(f"state: {store.where}" + (f" ({stored.note})" if stored.note else ""))
        if fleet.summary():
            print(f"fleet: {fleet.summary()}")
        print(describe(stored.state))
    return 0


def _edit(args: argparse.Namespace, change, summary: str) -> int:  # type: ignore[no-untyped-def]
    store = _store(args)
    try:
        stored = store.update(change, expect=getattr(args, "if_version", None))
    except Conflict as exc:
        _err(f"not changed: {exc}; see `reasoning-panel show` and run it again")
        return 3
    except StoreError as exc:
        _err(f"not changed: {exc}")
        return 1
    except StateError as exc:
        try:
            store.read()
        except StateError:
            _err(f"{store.where} is invalid, not changed: {exc}")
        else:  # the stored state is fine: the change asked for is what is refused
            _err(f"not changed: {exc}")
        return 1
    print(summary)
    fleet = store.wait_applied(stored.version, timeout=2.0)
    if fleet.summary():
        print(fleet.summary())
    if getattr(args, "json", False):
        print(json.dumps(state_to_dict(stored.state)))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    home = _home(args)
    known = args.config or read_proxy_info(home).get("config")
    config = Path(known) if known else None
    if config is not None and not config.is_file():
        _err(f"warning: cannot read {config}: the model name is not checked")
    elif config is not None:
        models = config_models(config)
        if models and args.model not in models:
            _err(f"warning: {args.model!r} is not a model in {config}"
                 f" (it has: {', '.join(models)}); requests sent there will fail")
    return _edit(args, lambda s: s.with_tier_model(args.tier, args.model),
                 f"{args.tier} -> {args.model}")


def cmd_set_fallbacks(args: argparse.Namespace) -> int:
    models = () if args.models == ["off"] else tuple(args.models)
    known = args.config or read_proxy_info(_home(args)).get("config")
    config = Path(known) if known else None
    names = config_models(config) if config is not None and config.is_file() else []
    missing = [m for m in models if names and m not in names]
    if missing:
        _err(f"warning: not a model in {config}: {', '.join(missing)} (it has: "
             f"{', '.join(names)}); a fallback there fails too")
    return _edit(args, lambda s: s.with_tier_fallbacks(args.tier, models),
                 f"{args.tier} falls back to {', '.join(models)}" if models
                 else f"{args.tier}: no fallbacks")


def headroom_text(minimum: Mapping[str, Threshold]) -> str:
    """``requests=2 tokens=5%``: a tier's headroom as the command line writes it."""
    return " ".join(f"{kind}={value.text()}" for kind, value in minimum.items())


def cmd_set_headroom(args: argparse.Namespace) -> int:
    minimum: dict[str, Any] = {}
    if args.limits != ["off"]:
        for item in args.limits:
            kind, sep, value = item.partition("=")
            if not sep or not value:
                _err(f"not changed: {item!r}: give KIND=VALUE, e.g. tokens=5% or requests=2")
                return 2
            minimum[kind.strip()] = value.strip() if value.strip().endswith("%") else (
                int(value) if value.strip().isdigit() else value.strip())
    try:
        parsed = parse_min_remaining(f"tiers.{args.tier}.min_remaining", minimum)
    except StateError as exc:
        _err(f"not changed: {exc}")
        return 1
    return _edit(args, lambda s: s.with_tier_headroom(args.tier, parsed),
                 f"{args.tier} keeps {headroom_text(parsed)} in reserve: below that, its "
                 "requests go to its fallbacks first" if parsed else f"{args.tier}: no headroom")


def cmd_pin(args: argparse.Namespace) -> int:
    pin = None if args.tier == "off" else args.tier
    from dataclasses import replace

    return _edit(args, lambda s: replace(s, pin=pin),
                 f"pinned to {pin}" if pin else "pin off: routing by strength")


def cmd_routing(args: argparse.Namespace) -> int:
    from dataclasses import replace

    on = args.switch == "on"
    return _edit(args, lambda s: replace(s, routing=on), f"routing {args.switch}")


def cmd_cap(args: argparse.Namespace) -> int:
    """Show the caps, or set / lift one."""
    if args.kind is None:
        try:
            state = _store(args).ensure().state
        except (StateError, StoreError) as exc:
            _err(str(exc))
            return 1
        print(f"caps: {describe_caps(state.caps)}")
        return 0
    if args.tier is None:
        _err("cap: give a tier (none, low, medium, high) or 'off'")
        return 2
    kind, tier = args.kind, args.tier
    if tier == "off":
        return _edit(args, lambda s: replace(s, caps={k: v for k, v in s.caps.items() if k != kind}),
                     f"cap {kind} off")
    return _edit(args, lambda s: replace(s, caps={**s.caps, kind: tier}),
                 f"{kind} requests go no higher than {tier}")


def cmd_preset(args: argparse.Namespace) -> int:
    """Use, save, list or delete named mappings (tiers, pin, caps)."""
    name = args.name
    if args.action == "list":
        try:
            state = _store(args).ensure().state
        except (StateError, StoreError) as exc:
            _err(str(exc))
            return 1
        if args.json:
            print(json.dumps(state_to_dict(state)["presets"], indent=2))
        elif not state.presets:
            print("no presets (save one with `reasoning-panel preset save NAME`)")
        for preset_name, preset in state.presets.items():
            if not args.json:
                print(f"{preset_name}: {describe_preset(preset)}")
        return 0
    if not name:
        _err(f"preset {args.action}: give the preset's name")
        return 2
    if args.action == "use":
        return _edit(args, lambda s: s.with_preset(name), f"preset {name} in force")
    if args.action == "save":
        return _edit(args, lambda s: replace(s, presets={**s.presets, name: s.as_preset()}),
                     f"preset {name} saved (tiers, pin, caps)")

    def delete(s: State) -> State:
        if name not in s.presets:
            raise StateError(f"presets: no preset {name!r}")
        return replace(s, presets={k: v for k, v in s.presets.items() if k != name})

    return _edit(args, delete, f"preset {name} deleted")


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a state file without applying it."""
    path = Path(args.file)
    try:
        parse_state_text(path.read_text(encoding="utf-8"))
    except (OSError, StateError) as exc:
        _err(f"{path}: {exc}")
        return 1
    print(f"{path}: valid")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from app.tail import run_tail

    store = _store(args)
    hint = store.events_hint()
    if hint:
        _err(hint + (" waiting for the first ..." if args.follow else ""))
    return run_tail(store, args.n, args.follow, args.json)


def cmd_statusline(args: argparse.Namespace) -> int:
    from app.clients import statusline

    if args.install or args.dry_run:
        return statusline.install(_home(args), dry_run=args.dry_run)
    return statusline.main(_home(args))


def cmd_claude(args: argparse.Namespace) -> int:
    from app.clients.claude import run_claude

    claude_args = args.claude_args[1:] if args.claude_args[:1] == ["--"] else args.claude_args
    return run_claude(_home(args), Path(args.config).expanduser() if args.config else None,
                      not args.no_statusline, claude_args, window=not args.no_window)


def cmd_codex(args: argparse.Namespace) -> int:
    from app.clients.codex import run_codex

    codex_args = args.codex_args[1:] if args.codex_args[:1] == ["--"] else args.codex_args
    return run_codex(_home(args), Path(args.config).expanduser() if args.config else None,
                     codex_args, window=not args.no_window)


def cmd_doctor(args: argparse.Namespace) -> int:
    from app.doctor import run_doctor

    return run_doctor(_home(args), _store(args), Path(args.config).expanduser() if args.config
                      else None, args.url, args.json)


def cmd_report(args: argparse.Namespace) -> int:
    from app.report import parse_remap, run_report

    try:
        remap = parse_remap(args.remap)
    except ValueError as exc:
        _err(str(exc))
        return 2
    home = _home(args)
    known = args.config or read_proxy_info(home).get("config")
    config = Path(known).expanduser() if known else None
    if config is not None and not config.is_file():
        _err(f"warning: cannot read {config}: its prices are not used")
        config = None
    return run_report(_store(args), args.by, config, remap, args.json, sys.stdout)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.statusline:
        from app.bench.statusline import run_statusline_bench

        return run_statusline_bench(as_json=args.json, runs=10 if args.quick else 40)
    if args.panel:
        from app.bench.panel import run_panel_bench

        results = run_panel_bench(args.json)
        if args.json:
            print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        else:
            for key, value in results.items():
                print(f"{key:<36} {value:.3f}")
        return 0
    fleet_url = args.redis or os.environ.get(REDIS_URL_ENV, "").strip()
    if fleet_url:
        from app.bench.fleet import run_fleet_bench

        return run_fleet_bench(fleet_url, quick=args.quick, as_json=args.json)
    from app.bench.main import run_bench

    return run_bench(quick=args.quick, as_json=args.json, fallbacks_only=args.fallbacks)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from app.panel.app import ReasoningPanel

    ReasoningPanel(_home(args), max_rows=args.rows, proxy_url=args.proxy,
                   store=_store(args)).run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(Path(args.home).expanduser().resolve() if args.home else None, args.port,
                    strict=not args.lenient)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasoning-panel",
        description="Route LiteLLM proxy requests by reasoning strength; remap tiers live.",
    )
    parser.add_argument("--home", help="state folder (default: $REASONING_PANEL_HOME or "
                                       "~/.local/state/reasoning-panel)")
    parser.add_argument("--redis", metavar="URL", help="fleet mode: the state, events and memory "
                        "in Redis (default: $REASONING_PANEL_REDIS_URL; else the local files)")
    parser.add_argument("--rows", type=int, default=1000,
                        help="dashboard: requests kept in the stream (default 1000)")
    parser.add_argument("--proxy", help="dashboard: proxy URL for health and models "
                                        "(default: the one `proxy` started for this home)")
    parser.set_defaults(func=cmd_dashboard)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:  # type: ignore
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--home", default=argparse.SUPPRESS, help="state folder")
        p.add_argument("--redis", metavar="URL", default=argparse.SUPPRESS,
                       help="fleet mode: Redis URL (redis://[:PASSWORD@]HOST:PORT[/DB])")
        p.set_defaults(func=func)
        return p

    p = command("demo", cmd_demo, "stand-in provider + proxy + traffic + dashboard, no API keys")
    p.add_argument("--port", type=int, default=4000, help="proxy port (another if taken)")
    p.add_argument("--lenient", action="store_true",
                   help="a stand-in that accepts any history (default: strict, like a real provider)")

    p = command("proxy", cmd_proxy, "run the LiteLLM proxy with the routing callback")
    p.add_argument("--config", required=True, help="LiteLLM proxy config (e.g. configs/demo.yaml)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--num-workers", "--num_workers", dest="num_workers", type=int, default=1)

    p = command("standin", cmd_standin, "run the local stand-in provider (for configs/demo.yaml)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8010)
    p.add_argument("--strict", action="store_true",
                   help="apply the Anthropic API's rules on replayed history (thinking signatures, "
                        "tool loops) with its error texts; also REASONING_PANEL_STANDIN_STRICT=1")

    p = command("show", cmd_show, "show the routing state")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("set", cmd_set, "send a tier to a model")
    p.add_argument("tier", choices=TIERS)
    p.add_argument("model", help="model group name in the proxy's config")
    p.add_argument("--config", help="proxy config to check the model against "
                                    "(default: the running proxy's)")
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("set-fallbacks", cmd_set_fallbacks,
                "the models a tier falls back to, in order, when its model fails; 'off' clears")
    p.add_argument("tier", choices=TIERS)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model groups, or 'off'")
    p.add_argument("--config", help="proxy config to check the models against "
                                    "(default: the running proxy's)")
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("set-headroom", cmd_set_headroom,
                "the share or count of its model's rate limit a tier keeps in reserve "
                "(below it, the tier's fallbacks serve first); 'off' clears")
    p.add_argument("tier", choices=TIERS)
    p.add_argument("limits", nargs="+", metavar="KIND=VALUE",
                   help="tokens=5%%, requests=2 (either or both), or 'off'")
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("pin", cmd_pin, "send every routed request to one tier, or 'off'")
    p.add_argument("tier", choices=(*TIERS, "off"))
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("routing", cmd_routing, "turn routing on or off")
    p.add_argument("switch", choices=("on", "off"))
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("tail", cmd_tail, "show the last requests (and follow new ones with -f)")
    p.add_argument("-n", type=_count, default=20, help="how many requests (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    p.add_argument("--json", action="store_true", help="raw event records, one a line")

    p = command("bench", cmd_bench, "measure what the callback costs the proxy")
    p.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    p.add_argument("--json", action="store_true", help="one JSON object of figures")
    p.add_argument("--panel", action="store_true",
                   help="measure the dashboard instead: start-up, records/s, remap latency")
    p.add_argument("--fallbacks", action="store_true",
                   help="only the context estimate (cost, error) and the fallback hop")
    p.add_argument("--statusline", action="store_true",
                   help="measure `statusline` instead: wall time on a 100,000-record log")

    p = command("statusline", cmd_statusline, "one line for Claude Code's status line (reads "
                                              "Claude Code's JSON on stdin)")
    p.add_argument("--install", action="store_true",
                   help="add it to Claude Code's settings.json ($CLAUDE_CONFIG_DIR or ~/.claude)")
    p.add_argument("--dry-run", action="store_true", help="with --install: print, change nothing")

    p = command("claude", cmd_claude, "run Claude Code through this state folder's proxy "
                                      "(started if none is running)")
    p.add_argument("--config", help="proxy config to start a proxy with (default: the last one)")
    p.add_argument("--no-statusline", action="store_true", help="leave Claude Code's status line")
    p.add_argument("--no-window", action="store_true",
                   help="leave Claude Code's context window and compaction point as they are")
    p.add_argument("claude_args", nargs=argparse.REMAINDER, help="-- then arguments for claude")

    p = command("codex", cmd_codex, "run the Codex CLI through this state folder's proxy "
                                    "(started if none is running; ~/.codex is left alone)")
    p.add_argument("--config", help="proxy config to start a proxy with (default: the last one)")
    p.add_argument("--no-window", action="store_true",
                   help="leave Codex's context window and auto-compact limit as they are")
    p.add_argument("codex_args", nargs=argparse.REMAINDER, help="-- then arguments for codex")

    p = command("report", cmd_report, "requests, tokens and cost per day or session, and what "
                                      "another mapping would have cost")
    p.add_argument("--by", choices=("day", "session"), default="day")
    p.add_argument("--with", dest="remap", action="append", default=[], metavar="TIER=MODEL",
                   help="price the same traffic with TIER sent to MODEL (repeatable)")
    p.add_argument("--config", help="proxy config whose prices to use (default: the running "
                                    "proxy's)")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = command("cap", cmd_cap, "cap a kind of request at a tier ('subagent' or a client-model "
                                "glob), 'off' to lift it; no arguments: show the caps")
    p.add_argument("kind", nargs="?", help="'subagent' or a client-model name or glob")
    p.add_argument("tier", nargs="?", choices=(*TIERS, "off"))
    p.add_argument("--json", action="store_true", help="print the new state as JSON")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("preset", cmd_preset, "named mappings (tiers, pin, caps): use, save, list, delete")
    p.add_argument("action", choices=("use", "save", "list", "delete"))
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--if-version", dest="if_version", type=_version, metavar="V",
                   help="change only if the stored state is still version V (`show --json`)")

    p = command("doctor", cmd_doctor, "check the install, the LiteLLM version and settings, the "
                                      "state, the proxy, Redis and the clients; exit 1 on a failure")
    p.add_argument("--config", help="the proxy config to check (default: the running proxy's)")
    p.add_argument("--url", help="the proxy to check (default: the one `proxy` started for this "
                                 "state folder)")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = command("check", cmd_check, "validate a state file without applying it")
    p.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    # LiteLLM fetches its cost map from the network at import unless told to use the bundled one.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    args = build_parser().parse_args(argv)
    if not hasattr(args, "home"):
        args.home = None
    if not hasattr(args, "redis"):
        args.redis = None
    if args.redis:  # also for what this command starts: proxy, Claude Code, its status line
        os.environ[REDIS_URL_ENV] = args.redis
    try:
        return int(args.func(args) or 0)
    except StoreError as exc:  # e.g. a bad --redis URL: a sentence, not a stack trace
        _err(str(exc))
        return 2
    except BrokenPipeError:  # `reasoning-panel show --json | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
