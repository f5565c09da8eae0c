from pathlib import Path

import pytest

from speech2image.config import Settings

SETTINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"  # linked from the README


def test_defaults_bind_loopback_without_debug():
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.debug is False
    assert settings.max_upload_mb == 25.0
    assert settings.max_audio_s == 120.0
    assert settings.whisper_model == "bundled"


def test_environment_values_are_typed():
    settings = Settings.from_env(
        {
            "SPEECH2IMAGE_PORT": "8123",
            "SPEECH2IMAGE_DEBUG": "yes",
            "SPEECH2IMAGE_MAX_AUDIO_S": "30.5",
            "SPEECH2IMAGE_WHISPER_MODEL": "/models/small",
            "SPEECH2IMAGE_HOST": "  ",  # blank means default
        }
    )
    assert settings.port == 8123
    assert settings.debug is True
    assert settings.max_audio_s == 30.5
    assert settings.whisper_model == "/models/small"
    assert settings.host == "127.0.0.1"


def test_overrides_beat_environment():
    settings = Settings.from_env({"SPEECH2IMAGE_PORT": "8123"}, port=9000)
    assert settings.port == 9000


@pytest.mark.parametrize("name,value", [("SPEECH2IMAGE_PORT", "five"), ("SPEECH2IMAGE_DEBUG", "maybe")])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_the_settings_reference_documents_every_setting():
    reference = SETTINGS_DOC.read_text()
    for variable, default, meaning in Settings.describe():
        assert f"| `{variable}` | `{default}` | {meaning} |" in reference, variable
