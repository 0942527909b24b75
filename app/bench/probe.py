"""A probe the bench loads into a proxy beside the callback (a second entry in ``callbacks:``):
which Python functions the proxy's event loop runs while it serves a few requests.

Inside a loaded proxy what a hook costs is mostly where its code and data are read from: LiteLLM
runs about 13 ms of its own code between two of the callback's hooks, and little of the hook's
code is left in the CPU's caches. Each function a request runs is then read again, so the share
of a request's functions that are the callback's is what it costs, whatever those functions
compute. Unlike a ratio of throughputs, the count is the same on a quiet machine and a busy one.

Between its ``START``-th request and ``START + SPAN`` answers later (a load of one request at a
time), ``sys.setprofile`` counts every Python function called on the event loop's thread, by the
package its code is in; the counts go to ``$REASONING_PANEL_PROBE_OUT`` as JSON. This module
imports LiteLLM only: it runs in the proxy.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, Final

import litellm
from litellm.integrations.custom_logger import CustomLogger

import callbacks

START: Final = 50  # requests served first: every code path taken and specialised once
SPAN: Final = 20  # requests counted
PACKAGES: Final = {"callbacks": str(Path(callbacks.__file__).parent),
                   "litellm": str(Path(litellm.__file__).parent)}


def package(filename: str) -> str:
    """``callbacks``, ``litellm`` or ``other``: where a function's code is."""
    return next((name for name, folder in PACKAGES.items() if filename.startswith(folder)),
                "other")


class FunctionCount(CustomLogger):
    """Counts the functions the event loop runs over ``SPAN`` requests (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.answered = 0
        self.ran: set[tuple[str, str, int]] = set()

    def _count(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            self.ran.add((code.co_filename, code.co_name, code.co_firstlineno))

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any,
                                  data: dict[str, Any], call_type: Any) -> dict[str, Any]:
        self.requests += 1
        if self.requests == START:
            sys.setprofile(self._count)
        return data

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        if self.requests < START:
            return
        self.answered += 1
        if self.answered == SPAN:
            sys.setprofile(None)
            self._write()

    def _write(self) -> None:
        functions = Counter(package(filename) for filename, _, _ in self.ran)
        out = os.environ.get("REASONING_PANEL_PROBE_OUT")
        if out:
            Path(out).write_text(json.dumps({"requests": SPAN, "functions": functions}))


probe = FunctionCount()
