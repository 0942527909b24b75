"""Run LiteLLM's own proxy command, with worker health checks that allow a slow start.

With ``--num_workers`` > 1, uvicorn's supervisor pings each worker and kills one that does not
answer within 5 s, then starts another. A worker still importing LiteLLM on a busy machine (its
import alone takes several seconds) is killed that way again and again, and the proxy never
comes up. Here the workers get a minute; everything else is LiteLLM's CLI as it is
(``python -m callbacks.litellm_proxy --config ...`` takes the ``litellm`` command's options).

SIGTERM ends the process normally: uvicorn stops gracefully, then raises the signal again with
the handler it found at start, which here exits, so the callback's writers write what they
have queued (the event log's last records, the memory of a proxy with one worker) instead of
the process dying by the signal.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any, Final

import uvicorn

WORKER_HEALTHCHECK_S: Final = 60


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit)
    run = uvicorn.run

    def run_patiently(*args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timeout_worker_healthcheck", WORKER_HEALTHCHECK_S)
        run(*args, **kwargs)

    uvicorn.run = run_patiently
    from litellm.proxy.proxy_cli import run_server

    run_server()


if __name__ == "__main__":
    main()
