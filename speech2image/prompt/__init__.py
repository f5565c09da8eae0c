"""The prompt stage: a transcript in, a ``PromptPlan`` (prompt, negative prompt, caption) out.

``writer`` is the stage (the LLM when one answers, else the offline rewriter); ``llm`` talks to any
OpenAI-compatible server; ``check`` keeps an LLM's answer to the person's own words; ``offline``
rewrites without an LLM and reads the wording cues of a change; ``plan`` holds what the stage answers.
"""
from .check import AnswerCheck, content_words, missing_words
from .llm import LlmClient, LlmError, Sampling
from .offline import (
                      DEFAULT_STRENGTH,
                      STRENGTH_RANGE,
                      OfflineRewriter,
                      caption_for,
                      clean_request,
                      edit_cue,
                      strength_for,
                      subject_of,
)
from .plan import (
                      DEFAULT_NEGATIVE,
                      DEFAULT_PRESET,
                      PRESETS,
                      QUALITY_WORDS,
                      Preset,
                      PromptPlan,
                      Turn,
                      get_preset,
)
from .writer import PromptWriter, SessionHistory

__all__ = ["DEFAULT_NEGATIVE", "DEFAULT_PRESET", "DEFAULT_STRENGTH", "PRESETS", "QUALITY_WORDS", "STRENGTH_RANGE",
           "AnswerCheck", "LlmClient", "LlmError", "OfflineRewriter", "Preset", "PromptPlan", "PromptWriter",
           "Sampling", "SessionHistory", "Turn", "caption_for", "clean_request", "content_words", "edit_cue",
           "get_preset", "missing_words", "strength_for", "subject_of"]
