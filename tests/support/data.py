"""Inputs several tests and the benchmarks share."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository

# The shipped txt2img workflow, API format.
SHIPPED = json.loads((ROOT / "workflows" / "txt2img.json").read_text())

# 31 transcripts of the kind people say to the app (fillers, politeness, styles, other languages):
# the offline rewriter is checked on each, and benchmarks/bench_prompt.py times it on them.
CASES = [
    "a red fox sitting in a snowy forest at sunrise",
    "um can you draw me a cat wearing a red hat",
    "uh, could you please make a picture of a lighthouse on a rocky coast during a storm",
    "I'd like to see an astronaut riding a horse on the moon, please",
    "draw a bowl of ramen with a boiled egg in watercolor style",
    "hey, um, show me a futuristic city at night with neon signs and flying cars, thanks",
    "so, uh, I want a golden retriever puppy playing in autumn leaves",
    "generate an image of a medieval castle on a hill, oil painting",
    "can you paint a portrait of an old fisherman with a grey beard",
    "okay so I was thinking maybe a big old oak tree in a field with, like, sheep around it and a sunset",
    "a cyberpunk samurai standing in the rain, cinematic, 35mm photo",
    "make me a logo of a blue whale, flat vector style",
    "hmm how about a cozy reading nook with a cat and a cup of tea",
    "I want to see two dragons fighting above a volcano",
    "please create a minimalist poster of Mount Fuji in pink and orange",
    "um um a tiny house made of candy in a dark forest",
    "could you draw a cartoon robot waving hello",
    "uh a steampunk airship over London at dusk you know with lots of brass",
    "a bowl of fruit",
    "show me what a black hole would look like from a spaceship window",
    "er draw a watercolor map of an imaginary island with a treasure chest",
    "I'd love a photo of a hummingbird drinking from a purple flower, macro shot",
    "can you make a pixel art knight with a shield",
    "a sunflower field under a stormy sky, Van Gogh style",
    "so like, a penguin wearing sunglasses on a beach, I mean a tropical beach",
    "un chat noir sur un toit de Paris la nuit",
    "ein roter Apfel auf einem Holztisch",
    "what time is it",
    "alright let's see a snowy mountain cabin with smoke coming from the chimney",
    "imagine a giant jellyfish floating over a desert, surreal",
    "well I need a children's book illustration of a fox and a rabbit having a picnic",
]
