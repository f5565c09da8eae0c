"""Benchmark the prompt stage: the offline rewriter always, an LLM server when given.

    .venv/bin/python scripts/bench_prompt.py [--llm-url http://localhost:1234/v1] [--repeats 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from benchlib import pct
from speech2image.llm import LlmClient  # noqa: E402
from speech2image.prompt_writer import PRESETS, OfflineRewriter, PromptWriter  # noqa: E402
from tests.support.data import CASES  # noqa: E402  (31 varied transcripts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--llm-url", help="also time an OpenAI-compatible server")
    parser.add_argument("--llm-runs", type=int, default=5)
    args = parser.parse_args()

    rewriter = OfflineRewriter()
    times = []
    for _ in range(args.repeats):
        for text in CASES:
            t0 = time.perf_counter()
            rewriter.rewrite(text, PRESETS["balanced"])
            times.append((time.perf_counter() - t0) * 1000)
    print(f"offline rewriter: {len(times)} rewrites, median {statistics.median(times):.3f} ms, "
          f"p95 {pct(times, 0.95):.3f} ms, max {max(times):.3f} ms")

    if args.llm_url:
        writer = PromptWriter(LlmClient(url=args.llm_url, timeout_s=120))
        llm_times = []
        for text in CASES[: args.llm_runs]:
            plan = writer.write(text)
            llm_times.append(plan.elapsed_s)
            print(f"  {plan.source:7} {plan.elapsed_s:6.2f} s  {plan.prompt[:70]}")
        print(f"LLM at {args.llm_url}: median {statistics.median(llm_times):.2f} s, max {max(llm_times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
