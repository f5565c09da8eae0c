"""LocalAgreement-2: which words of a live transcript are settled. Whole-audio passes re-read the
recording; a word is committed once two consecutive passes agree on it, and committed words never
change (the tentative tail may)."""
from __future__ import annotations

import re


def _plain(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


class Agreement:
    """LocalAgreement-2 over whole-audio passes: the words after the committed ones are compared
    with the previous pass's words at the same places; the common prefix is committed. The last
    word of a pass is never committed by it: the audio may end in the middle of that word."""

    def __init__(self):
        self.committed: list[str] = []
        self.tentative: list[str] = []
        self._previous: list[str] = []

    def update(self, words: list[str]) -> None:
        start = len(self.committed)
        new, old = words[start:], self._previous[start:]
        agreed = 0
        while agreed < min(len(new) - 1, len(old)) and _plain(new[agreed]) == _plain(old[agreed]):
            agreed += 1
        self.committed.extend(new[:agreed])
        self.tentative = new[agreed:]
        self._previous = words

    def text(self) -> str:
        return " ".join(self.committed + self.tentative)

    def settle(self) -> None:
        """Every word heard so far is kept (the speaker ended a phrase): the next passes add to them."""
        self.committed += self.tentative
        self.tentative = []
        self._previous = list(self.committed)
