"""Benchmark the prompt stage: the offline rewriter always, an LLM server when given.

    .venv/bin/python benchmarks/bench_prompt.py [--llm-url http://localhost:1234/v1] [--repeats 200]

Besides the times it counts, over the held-out requests (tests/support/data.py), for how many
each path keeps every content word of the request (what ``prompt_check.content_words`` finds):
the offline rewriter, the LLM's raw answer, and the LLM after the answer check (its prompt
when the check keeps it, else the offline one), as the app would render them.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time

from benchlib import pct

from speech2image.prompt import PRESETS, OfflineRewriter, PromptWriter, content_words, missing_words  # noqa: E402  # noqa: E402
from speech2image.prompt.llm import LlmClient, LlmError, parse_prompt_fields  # noqa: E402
from tests.support.data import CASES  # noqa: E402  (31 varied transcripts)


def keeps_all(subject: str, prompt: str | None) -> bool:
    return prompt is not None and not missing_words(content_words(subject), prompt)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--llm-url", help="also run an OpenAI-compatible server on the requests")
    parser.add_argument("--llm-runs", type=int, default=len(CASES), help="how many of the requests to send it")
    parser.add_argument("--preset", default="balanced", choices=sorted(PRESETS))
    args = parser.parse_args()
    preset = PRESETS[args.preset]

    rewriter = OfflineRewriter()
    times = []
    for _ in range(args.repeats):
        for text in CASES:
            t0 = time.perf_counter()
            rewriter.rewrite(text, preset)
            times.append((time.perf_counter() - t0) * 1000)
    print(f"offline rewriter: {len(times)} rewrites, median {statistics.median(times):.3f} ms, "
          f"p95 {pct(times, 0.95):.3f} ms, max {max(times):.3f} ms")
    subjects = {text: rewriter.rewrite(text, preset) for text in CASES}
    offline_kept = sum(keeps_all(subject, plan.prompt) for subject, plan in subjects.values())
    print(f"content words kept, offline rewriter: {offline_kept}/{len(CASES)} requests")

    if args.llm_url:
        writer = PromptWriter(LlmClient(url=args.llm_url, timeout_s=120))
        cases = CASES[: args.llm_runs]
        llm_times, raw_kept, checked_kept, outcomes = [], 0, 0, collections.Counter()
        for text in cases:
            subject = subjects[text][0]
            tokens: list[str] = []
            plan = writer.write(text, preset=args.preset, on_token=tokens.append)  # the app's own path
            try:
                raw = parse_prompt_fields("".join(tokens))["prompt"]  # what the LLM answered, unchecked
            except LlmError:
                raw = None
            raw_kept += keeps_all(subject, raw)
            checked_kept += keeps_all(subject, plan.prompt)
            outcome = ("kept" if plan.source == "llm" else
                       "set aside" if raw is not None else "no usable answer")
            outcomes[outcome] += 1
            llm_times.append(plan.elapsed_s)
            print(f"  {outcome:16} {plan.elapsed_s:6.2f} s  raw {raw!r:.60}  {plan.notice or ''}")
        n = len(cases)
        offline_on = sum(keeps_all(subjects[t][0], subjects[t][1].prompt) for t in cases)
        print(f"LLM at {args.llm_url} ({args.preset}): median {statistics.median(llm_times):.2f} s, "
              f"max {max(llm_times):.2f} s; its prompt {outcomes['kept']} kept, {outcomes['set aside']} set aside, "
              f"{outcomes['no usable answer']} unusable")
        print(f"content words kept on {n} requests: offline {offline_on}/{n}, LLM raw {raw_kept}/{n}, LLM after checks {checked_kept}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
