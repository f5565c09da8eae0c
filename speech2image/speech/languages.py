"""The languages Whisper hears, by their codes, and what follows from one: its name, whether a detection
is sure enough to go on without asking, and the espeak-ng voice that reads it.

``LANGUAGE_CHOICES`` is the one list the ``language`` setting (and a job's ``language``) is checked
against: ``auto`` (Whisper detects the language) or one of Whisper's own codes.
"""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess

log = logging.getLogger(__name__)

AUTO = "auto"
ENGLISH = "en"
# Below this probability a detected language is a guess: the page asks the person (one line, not an error).
UNSURE_BELOW = 0.5

# Whisper's 100 languages (faster_whisper.tokenizer._LANGUAGE_CODES), with their English names.
LANGUAGES = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "as": "Assamese", "az": "Azerbaijani", "ba": "Bashkir",
    "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian",
    "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fo": "Faroese",
    "fr": "French", "gl": "Galician", "gu": "Gujarati", "ha": "Hausa", "haw": "Hawaiian", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian",
    "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jw": "Javanese", "ka": "Georgian",
    "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean", "la": "Latin", "lb": "Luxembourgish",
    "ln": "Lingala", "lo": "Lao", "lt": "Lithuanian", "lv": "Latvian", "mg": "Malagasy", "mi": "Maori",
    "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese",
    "my": "Burmese", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk", "no": "Norwegian", "oc": "Occitan",
    "pa": "Punjabi", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sa": "Sanskrit", "sd": "Sindhi", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sn": "Shona",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "su": "Sundanese", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "te": "Telugu", "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish",
    "tt": "Tatar", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "yi": "Yiddish",
    "yo": "Yoruba", "zh": "Chinese", "yue": "Cantonese",
}
LANGUAGE_CHOICES = (AUTO, *LANGUAGES)
# Where espeak-ng names a language otherwise than Whisper does.
ESPEAK_NAMES = {"en": "en-us", "zh": "cmn", "no": "nb", "nn": "nb", "fr": "fr-fr", "pt": "pt", "es": "es"}


def language_name(code: str | None) -> str:
    """'German' for de; the code itself for one Whisper does not know; 'an unknown language' for None."""
    if not code:
        return "an unknown language"
    return LANGUAGES.get(code, code)


def fixed(language: str | None) -> str | None:
    """The language asked for, or None when Whisper is to detect it."""
    return None if language in (None, "", AUTO) else language


def is_english(language: str | None) -> bool:
    return (language or ENGLISH) == ENGLISH


def unsure(probability: float | None) -> bool:
    return probability is not None and probability < UNSURE_BELOW


@functools.lru_cache(maxsize=1)
def espeak_languages() -> tuple[str, ...]:
    """The languages of the installed espeak-ng's voices (``espeak-ng --voices``); none without espeak-ng."""
    binary = shutil.which("espeak-ng") or shutil.which("espeak")
    if not binary:
        return ()
    try:
        listing = subprocess.run([binary, "--voices"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not list espeak-ng's voices: %s", exc)
        return ()
    return tuple(line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1)


def espeak_voice(language: str) -> str | None:
    """espeak-ng's voice for a Whisper language code, or None when it has none."""
    known = espeak_languages()
    wanted = ESPEAK_NAMES.get(language, language)
    if wanted in known:
        return wanted
    return next((name for name in known if name.startswith(f"{language}-")), None)
