"""The ``reasoning-panel`` command's entry point.

Claude Code runs the status line after every assistant message, so ``reasoning-panel
statusline`` is answered here without loading the rest of the command line (YAML, the proxy
launcher, argparse set-up): tens of milliseconds instead of about a hundred. Anything else,
``statusline --install`` included, goes to :func:`app.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def statusline_home(argv: list[str]) -> Path | None:
    """The state folder when ``argv`` asks for the plain status line, else None."""
    if argv == ["statusline"]:
        from callbacks.stores.statefile import default_home

        return default_home()
    for home_at, command_at in ((1, 2), (2, 0)):  # --home H statusline | statusline --home H
        if len(argv) == 3 and argv[command_at] == "statusline" and argv[home_at - 1] == "--home":
            return Path(argv[home_at]).expanduser()
    if len(argv) == 2 and argv[1] == "statusline" and argv[0].startswith("--home="):
        return Path(argv[0].removeprefix("--home=")).expanduser()
    return None


def main() -> int:
    home = statusline_home(sys.argv[1:])
    if home is not None:
        try:
            from app.clients.statusline import main as statusline
        except Exception:  # noqa: BLE001 - a broken install still gives Claude Code a line
            print("reasoning-panel: -")
            return 0
        return statusline(home)
    from app.cli import main as cli

    return cli()


if __name__ == "__main__":
    sys.exit(main())
