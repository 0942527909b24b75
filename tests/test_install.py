"""The promise to people who already run a LiteLLM proxy: the wheel installs next to their
LiteLLM without changing it, and plain ``litellm --config X`` loads the callback and routes.

This is the README's "Add it to your LiteLLM proxy" recipe, step by step: build the wheel, a
fresh venv with another supported ``litellm[proxy]`` than the locked one, ``pip install`` the
wheel there, the config line, the env vars, ``litellm --config``, and all four tiers routed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest
import yaml

from app.local_stack import PROJECT_ROOT, Service, free_port, wait_http
from callbacks.compat import NEWEST_TESTED
from callbacks.core.preflight import CALLBACK_PATH

from .conftest import StandIn

pytestmark = pytest.mark.timeout(900)

# Another supported LiteLLM than the one uv.lock holds (1.108.5): the newest installable here.
OTHER_LITELLM = NEWEST_TESTED
TIERS = {"none": "team-fast", "low": "team-light", "medium": "team-mid", "high": "team-deep"}
EFFORTS = {"none": None, "low": "low", "medium": "medium", "high": "high"}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this project's venv, path or state folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "REASONING_PANEL_HOME",
                        "REASONING_PANEL_REDIS_URL", "LITELLM_MASTER_KEY")}
    return {**env, **extra}


NETWORK_ERRORS = ("Failed to fetch", "error sending request", "dns error", "Connection refused",
                  "timed out", "NewConnectionError", "Temporary failure in name resolution")


def skip_if_unreachable(done: subprocess.CompletedProcess[str]) -> None:
    """Skip, saying why, when an install failed because the package registry is unreachable."""
    if done.returncode != 0 and any(s in done.stdout + done.stderr for s in NETWORK_ERRORS):
        print(f"the package registry is unreachable: {done.stderr[-500:]}")
        pytest.skip("the package registry is unreachable (see the printed reason)")


def version_in(python: Path, tmp: Path) -> str:
    done = run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
               tmp, clean_env())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with ``litellm[proxy]==OTHER_LITELLM``, as a user's proxy host has."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: the install test builds the wheel with it")
    tmp = tmp_path_factory.mktemp("install")
    done = run([uv, "venv", "--seed", "--python", sys.executable, str(tmp / "venv")], tmp)
    assert done.returncode == 0, done.stderr
    python = tmp / "venv" / "bin" / "python"
    done = run([uv, "pip", "install", "--python", str(python), f"litellm[proxy]=={OTHER_LITELLM}"],
               tmp, clean_env())
    skip_if_unreachable(done)
    assert done.returncode == 0, done.stderr
    return python


def test_the_wheel_installs_next_to_litellm_and_plain_litellm_routes(
        venv: Path, standin: StandIn, tmp_path: Path) -> None:
    before = version_in(venv, tmp_path)
    assert before == OTHER_LITELLM

    # uv build; pip install the wheel into the proxy's venv
    done = run(["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist")], PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("reasoning_panel-*.whl")
    done = run([str(venv.with_name("pip")), "install", str(wheel)], tmp_path, clean_env())
    skip_if_unreachable(done)
    assert done.returncode == 0, done.stdout + done.stderr
    assert version_in(venv, tmp_path) == before  # the user's LiteLLM is untouched

    # the user's own config: their model groups, and the callback line
    standin_params = {"api_base": "os.environ/STANDIN_URL", "api_key": "standin-needs-no-key"}
    models = [{"model_name": group, "litellm_params": {"model": f"anthropic/standin-{tier}",
                                                       **standin_params}}
              for tier, group in TIERS.items()]
    models.append({"model_name": "claude-opus-4-8",
                   "litellm_params": {"model": "anthropic/claude-opus-4-8", **standin_params}})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": models,
        "litellm_settings": {"callbacks": CALLBACK_PATH, "drop_params": True}}))

    # plain `litellm --config`, from a folder that holds no project code
    home, key, port = tmp_path / "state", "sk-" + secrets.token_urlsafe(24), free_port()
    env = clean_env(REASONING_PANEL_HOME=str(home), LITELLM_MASTER_KEY=key,
                    STANDIN_URL=standin.url, LITELLM_LOCAL_MODEL_COST_MAP="True",
                    **{f"LITELLM_PROXY_{t.upper()}_REASONING_MODEL": g for t, g in TIERS.items()})
    log = open(tmp_path / "litellm.log", "wb")  # noqa: SIM115 - closed by Service.stop
    proc = subprocess.Popen([str(venv.with_name("litellm")), "--config", str(config), "--host",
                             "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    service = Service("litellm", proc, f"http://127.0.0.1:{port}", tmp_path / "litellm.log", log)
    try:
        wait_http(service.url + "/health/liveliness", 180, proc)
        client = anthropic.Anthropic(base_url=service.url, api_key=key, max_retries=0)
        served = {}
        for tier, effort in EFFORTS.items():
            body = ({"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}}
                    if effort else {})
            raw = client.messages.with_raw_response.create(
                model="claude-opus-4-8", max_tokens=64,
                messages=[{"role": "user", "content": "Refactor the parser, please."}], **body)
            text = "".join(b.text for b in raw.parse().content if b.type == "text")
            served[tier] = (raw.headers["x-litellm-model-group"], text.split()[0])
        assert served == {t: (g, f"[standin-{t}]") for t, g in TIERS.items()}, \
            service.log_text()[-3000:]
        assert (home / "events.jsonl").exists()  # the records go to the state folder

        # the wheel's own `reasoning-panel doctor`, on the plain `litellm` proxy
        done = run([str(venv.with_name("reasoning-panel")), "doctor", "--json", "--url",
                    service.url], tmp_path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        assert checks["litellm_version"]["message"].startswith(f"LiteLLM {OTHER_LITELLM} ")
        assert checks["config"]["message"] == str(config.resolve())  # from the worker's record
        for name in ("callback", "callback_import", "proxy", "last_start", "master_key"):
            assert checks[name]["status"] == "ok", checks[name]
    finally:
        service.stop()
