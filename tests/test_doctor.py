"""``reasoning-panel doctor``: the right line and exit code on a healthy setup and each broken one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import doctor as doctor_module
from app.cli import main
from app.local_stack import DEMO_CONFIG, free_port
from callbacks.core.preflight import Check
from callbacks.launcher import PROXY_INFO_FILE
from callbacks.stores.base import REDIS_URL_ENV
from callbacks.stores.statefile import HOME_ENV

from .conftest import Proxy

pytestmark = pytest.mark.timeout(240)


real_import_check = doctor_module.import_check
IMPORT_CHECKS: dict[tuple[str, Path], Check] = {}


def import_check_once(name: str, config: Path) -> Check:
    """The real import check, run once per callback name and config folder in this module: it
    imports LiteLLM in a fresh interpreter (about 12 s of CPU), and its answer depends on
    nothing else the tests vary."""
    key = (name, config.parent)
    if key not in IMPORT_CHECKS:
        IMPORT_CHECKS[key] = real_import_check(name, config)
    return IMPORT_CHECKS[key]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fleet mode or state folder leaks in from the environment or from another test
    (``main`` exports ``--redis``); the callback's import is checked once per name and folder."""
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    monkeypatch.setattr(doctor_module, "import_check", import_check_once)


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the configs the tests write (each its own file name), so the import
    check of the same callback from there runs once."""
    return tmp_path_factory.mktemp("configs")


def doctor(home: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["--home", str(home), "doctor", "--json", *args])
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is (code == 0)
    return code, {c["name"]: c for c in out["checks"]}


def private_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def write_config(folder: Path, name: str, **litellm_settings: Any) -> Path:
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["litellm_settings"].update(litellm_settings)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_healthy_setup_passes(proxy: Proxy, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = doctor(proxy.home, capsys=capsys)
    assert code == 0
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert failed == []
    assert checks["proxy"]["status"] == "ok"
    assert proxy.url in checks["proxy"]["message"] and "demo.yaml" in checks["proxy"]["message"]
    for name in ("litellm_version", "callback", "callback_import", "endpoint /v1/messages",
                 "drop_params", "master_key", "state_folder", "state_folder_private", "state"):
        assert checks[name]["status"] == "ok", checks[name]
    assert {"client claude", "client codex"} <= set(checks)


def test_the_text_output_says_ok_warn_fail_with_the_fix(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    home = private_home(tmp_path)
    (home / "state.yaml").write_text("routing: maybe\n")
    code = main(["--home", str(home), "doctor", "--config", str(DEMO_CONFIG)])
    out = capsys.readouterr().out
    assert code == 1
    state = next(line for line in out.splitlines() if line.startswith("fail  state "))
    assert "is invalid" in state
    assert "fix: fix the state file" in out
    assert out.splitlines()[-1].endswith("1 fail")


def test_an_open_state_folder_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    home.chmod(0o755)
    code, checks = doctor(home, "--config", str(DEMO_CONFIG), capsys=capsys)
    assert code == 1
    assert checks["state_folder_private"]["status"] == "fail"
    assert checks["state_folder_private"]["fix"] == f"chmod 700 {home}"


def test_an_invalid_state_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    (home / "state.yaml").write_text("tiers: {high: 3}\n")
    code, checks = doctor(home, "--config", str(DEMO_CONFIG), capsys=capsys)
    assert code == 1
    assert checks["state"]["status"] == "fail"
    assert "invalid" in checks["state"]["message"]


def test_a_proxy_that_is_down_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    (home / PROXY_INFO_FILE).write_text(json.dumps({"config": str(DEMO_CONFIG), "url": url}))
    code, checks = doctor(home, capsys=capsys)
    assert code == 1
    assert checks["proxy"]["status"] == "fail"
    assert url in checks["proxy"]["message"]
    assert checks["proxy"]["fix"] == f"reasoning-panel proxy --config {DEMO_CONFIG}"
    assert checks["config"]["status"] == "ok"  # the running proxy's config, from the state folder


def test_a_bypassing_setting_is_named(tmp_path: Path, configs: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    config = write_config(configs, "bypassing",
                          use_chat_completions_url_for_anthropic_messages=True, drop_params=False)
    code, checks = doctor(home, "--config", str(config), capsys=capsys)
    assert code == 0  # warnings: routing works, with a gap
    assert checks["endpoint /v1/messages"]["status"] == "warn"
    assert "use_chat_completions_url_for_anthropic_messages" in checks["endpoint /v1/messages"]["fix"]
    assert checks["drop_params"]["status"] == "warn"


def test_a_callback_only_logging_fails(tmp_path: Path, configs: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["litellm_settings"]["success_callback"] = [config["litellm_settings"].pop("callbacks")]
    path = configs / "logging-only.yaml"
    path.write_text(yaml.safe_dump(config))
    code, checks = doctor(home, "--config", str(path), capsys=capsys)
    assert code == 1
    assert checks["callback"]["status"] == "fail"
    assert "never runs" in checks["callback"]["message"]


def test_a_callback_that_does_not_import_fails(tmp_path: Path, configs: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    config = write_config(configs, "unknown-callback",
                          callbacks="model_route_callback.proxy_handler_instance")
    code, checks = doctor(home, "--config", str(config), capsys=capsys)
    assert code == 1
    assert checks["callback_import"]["status"] == "fail"
    assert "No module named 'model_route_callback'" in checks["callback_import"]["message"]


def test_redis_down_fails_in_fleet_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    home = private_home(tmp_path)
    monkeypatch.setenv(REDIS_URL_ENV, f"redis://127.0.0.1:{free_port()}/0")
    code, checks = doctor(home, "--config", str(DEMO_CONFIG), capsys=capsys)
    assert code == 1
    assert checks["redis"]["status"] == "fail"
    assert "state_folder_private" not in checks


def test_the_last_start_of_the_proxy_is_reported() -> None:
    from app.doctor import last_start_check
    from callbacks.core.preflight import ProxySettings, preflight, preflight_record

    healthy = ProxySettings(litellm_version="1.108.5", callback="callbacks", drop_params=True,
                            master_key="set", store_where="/tmp/h")
    ok = last_start_check(preflight_record(preflight(healthy), config="/etc/litellm.yaml"))
    assert ok is not None and ok.status == "ok" and "config /etc/litellm.yaml" in ok.message
    bad = last_start_check(preflight_record(preflight(
        ProxySettings(litellm_version="1.108.5", callback="callbacks", master_key="set"))))
    assert bad is not None and bad.status == "warn" and "warn drop_params" in bad.message
    assert last_start_check(None) is None
