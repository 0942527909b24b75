"""Run LiteLLM's own proxy command, with worker health checks that allow a slow start.

With ``--num_workers`` > 1, uvicorn's supervisor pings each worker and kills one that does not
answer within 5 s, then starts another. A worker still importing LiteLLM on a busy machine (its
import alone takes several seconds) is killed that way again and again, and the proxy never
comes up. Here the workers get a minute; everything else is LiteLLM's CLI as it is
(``python -m callbacks.litellm_proxy --config ...`` takes the ``litellm`` command's options).
"""

from __future__ import annotations

from typing import Any, Final

import uvicorn

WORKER_HEALTHCHECK_S: Final = 60


def main() -> None:
    run = uvicorn.run

    def run_patiently(*args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timeout_worker_healthcheck", WORKER_HEALTHCHECK_S)
        run(*args, **kwargs)

    uvicorn.run = run_patiently
    from litellm.proxy.proxy_cli import run_server

    run_server()


if __name__ == "__main__":
    main()
