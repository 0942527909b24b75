"""Which store a process uses: the local files, or Redis when fleet mode is on
(``--redis URL`` or ``$REASONING_PANEL_REDIS_URL``). See :mod:`callbacks.stores.base`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from callbacks.stores.base import REDIS_URL_ENV, Store
from callbacks.stores.files import FileStore
from callbacks.stores.statefile import default_home


def open_store(home: Path | None = None, redis_url: str | None = None,
               env: Mapping[str, str] | None = None) -> Store:
    """The store for a state folder: Redis when a URL is given or configured, else the files.
    Raises StoreError for a URL that cannot be used (nothing is contacted yet)."""
    env = os.environ if env is None else env
    url = (redis_url or env.get(REDIS_URL_ENV, "")).strip()
    home = home or default_home()
    if url:
        from callbacks.stores.redis_store import RedisStore

        return RedisStore(url, home, dict(env))
    return FileStore(home)
