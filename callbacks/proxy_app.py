"""LiteLLM's proxy app as ``reasoning-panel proxy`` serves it, with what importing LiteLLM built
out of the garbage collector's way.

Importing LiteLLM's proxy leaves about 700,000 objects that live as long as the process (its
model map, its modules, the proxy's routes). Python's collector walks every one of them at each
full collection: in a loaded proxy, a pause of about 0.45 s every 2,000 requests or so, which
lands on whatever requests are in flight. ``gc.freeze()`` moves them out of the collector's
generations once imported (Python's advice for servers that start once and serve long); what
the proxy allocates afterwards is collected as before. uvicorn imports this module in each
worker (:mod:`callbacks.litellm_proxy` names it as the app), so every worker freezes its own.
"""

from __future__ import annotations

import gc

from litellm.proxy.proxy_server import app

gc.collect()  # what the imports left as garbage is freed, not frozen
gc.freeze()

__all__ = ["app"]
