"""A probe the bench loads into a proxy beside the callback (a second entry in ``callbacks:``):
which Python functions the proxy's event loop runs while it serves a few requests, and what
CPU time the callback's hooks take in it.

Inside a loaded proxy what a hook costs is mostly where its code and data are read from: LiteLLM
runs about 13 ms of its own code between two of the callback's hooks, and little of the hook's
code is left in the CPU's caches. Each function a request runs is then read again, so the share
of a request's functions that are the callback's is what it costs, whatever those functions
compute. Unlike a ratio of throughputs, the count is the same on a quiet machine and a busy one.

Between its ``START``-th request and ``START + SPAN`` answers later (a load of one request at a
time), ``sys.setprofile`` counts every Python function called on the event loop's thread, by the
package its code is in: those that ran at all (``functions``), and on average those each request
ran (``per_request``: a function run once a second, such as the look at the state file, counts
in the first and hardly in the second); the counts go to ``$REASONING_PANEL_PROBE_OUT`` as JSON.

In a proxy with the callback, once the functions are counted, the probe wraps the callback's
three hooks that run for every request with the thread's CPU clock: from then on, every
``TIMES_EVERY`` answers, the CPU time each hook took so far and the event loop thread's own go
to ``$REASONING_PANEL_PROBE_OUT`` + ``.hooks`` (the bench reads them before and after a load).
That is the callback's cost inside a loaded proxy, caches as they are there, measured in one
process: steadier than a ratio between two. This module imports LiteLLM only: it runs in the proxy.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any, Final

import litellm
from litellm.integrations.custom_logger import CustomLogger

import callbacks

START: Final = 50  # requests served first: every code path taken and specialised once
SPAN: Final = 20  # requests counted
TIMES_EVERY: Final = 50  # answers between two writes of the hooks' CPU time
HOOKS: Final = ("async_pre_call_hook", "async_pre_call_deployment_hook",
                "async_log_success_event")
PACKAGES: Final = {"callbacks": str(Path(callbacks.__file__).parent),
                   "litellm": str(Path(litellm.__file__).parent)}


def package(filename: str) -> str:
    """``callbacks``, ``litellm`` or ``other``: where a function's code is."""
    return next((name for name, folder in PACKAGES.items() if filename.startswith(folder)),
                "other")


def timed(hook: Callable[..., Coroutine[Any, Any, Any]], spent: list[int]
          ) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``hook`` with its CPU time on this thread added to ``spent`` (calls, nanoseconds); a
    hook that waits (a continuation waiting for its tool's producer) counts the time others
    ran meanwhile too, which none of the bench's loads makes it do."""
    @functools.wraps(hook)
    async def run(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time_ns()
        try:
            return await hook(*args, **kwargs)
        finally:
            spent[0] += 1
            spent[1] += time.thread_time_ns() - began
    return run


class FunctionCount(CustomLogger):
    """Counts the functions the event loop runs over ``SPAN`` requests (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.answered = 0
        self.ran: set[tuple[str, str, int]] = set()
        self.request: set[tuple[str, str, int]] = set()  # since the last answer
        self.per_request: Counter[str] = Counter()  # summed over the answers
        self.hooks: dict[str, list[int]] = {}  # the callback's hooks: calls, CPU nanoseconds
        self.router = getattr(sys.modules.get("callbacks.model_route_callback"),
                              "proxy_handler_instance", None)  # loaded first, if at all

    def _count(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            self.request.add((code.co_filename, code.co_name, code.co_firstlineno))

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
        if self.answered >= SPAN:
            self.answered += 1
            if self.answered % TIMES_EVERY == 0:
                self._write_times()
            return
        sys.setprofile(None)  # the probe's own work is not counted
        self.answered += 1
        self.per_request.update(package(filename) for filename, _, _ in self.request)
        self.ran |= self.request
        self.request = set()
        if self.answered == SPAN:
            self._write()
            for name in HOOKS if self.router is not None else ():  # counted: now timed
                self.hooks[name] = [0, 0]
                setattr(self.router, name, timed(getattr(self.router, name), self.hooks[name]))
        else:
            sys.setprofile(self._count)

    def _write(self) -> None:
        functions = Counter(package(filename) for filename, _, _ in self.ran)
        out = os.environ.get("REASONING_PANEL_PROBE_OUT")
        if out:
            Path(out).write_text(json.dumps({
                "requests": SPAN, "functions": functions,
                "per_request": {name: n / SPAN for name, n in self.per_request.items()}}))

    def _write_times(self) -> None:
        out = os.environ.get("REASONING_PANEL_PROBE_OUT")
        if out:
            times = {"answers": self.answered, "loop_ns": time.thread_time_ns(),
                     "hooks": self.hooks}
            Path(out + ".hooks").write_text(json.dumps(times))


probe = FunctionCount()
