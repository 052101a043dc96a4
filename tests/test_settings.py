"""Settings: each is documented in the README, and a bad one is refused clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import service_env
from waketrain.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def env_names() -> list[str]:
    return [Settings.variable(name) for name in Settings.model_fields]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = README.read_text()
    missing = [name for name in env_names() if f"| `{name}` |" not in readme]
    assert missing == []


def test_deploy_and_detector_settings_use_their_own_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEPLOY_HOST", "board.local")
    monkeypatch.setenv("STT_WAKE_MODEL_PATH", "/models/x.onnx")
    monkeypatch.setenv("WAKETRAIN_MAX_CLIP_SECONDS", "12")
    settings = Settings()
    assert settings.deploy_host == "board.local"
    assert str(settings.stt_wake_model_path) == "/models/x.onnx"
    assert settings.max_clip_seconds == 12.0


def test_folder_lists_are_split_like_path_and_must_exist(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tv").mkdir()
    (tmp_path / "kitchen").mkdir()
    monkeypatch.setenv("WAKETRAIN_NOISE_DIRS", f"{tmp_path / 'tv'}:{tmp_path / 'kitchen'}:")
    assert Settings().noise_dirs == (tmp_path / "tv", tmp_path / "kitchen")
    assert Settings().eval_negative_dirs == ()


def test_trusted_proxies_are_comma_separated_addresses_or_networks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WAKETRAIN_TRUSTED_PROXIES", "10.0.0.2, fd00::1,192.168.1.0/24")
    assert Settings().trusted_proxies == ("10.0.0.2", "fd00::1", "192.168.1.0/24")
    monkeypatch.setenv("WAKETRAIN_TRUSTED_PROXIES", "*")
    with pytest.raises(ValidationError, match="'\\*' is not an IP address or network"):
        Settings()


def test_a_bad_setting_stops_the_cli_with_the_variable_and_what_is_wrong(tmp_path: Path) -> None:
    missing = tmp_path / "no-speech-here"
    env = service_env(tmp_path, WAKETRAIN_EVAL_NEGATIVE_DIRS=str(missing))
    env["DEPLOY_PORT"] = "twenty-two"
    run = subprocess.run(
        [sys.executable, "-m", "waketrain", "worker", "--max-jobs", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"WAKETRAIN_EVAL_NEGATIVE_DIRS: not a folder: {missing}" in run.stderr
    assert "DEPLOY_PORT: Input should be a valid integer" in run.stderr
    assert not (tmp_path / "waketrain.db").exists()  # refused before anything was written
