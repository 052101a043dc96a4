"""Every setting is documented in the README's configuration table."""

from __future__ import annotations

from pathlib import Path

from waketrain.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias.choices[0] if alias else f"WAKETRAIN_{name.upper()}")  # type: ignore[union-attr]
    return names


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
