"""The README stays what a user needs (the rest is in docs/), and no document points outside the repository."""
from __future__ import annotations

import re

from .support.house import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_short_and_links_the_rest():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for name in ("guide", "settings", "development", "benchmarks"):
        assert f"(docs/{name}.md" in readme, name
    assert "scripts/run.sh" in readme and "scripts/test.sh" in readme  # the two commands


def test_no_document_names_a_path_outside_the_repository():
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])\.\./(?!README\.md)", text), document.name  # docs/ may link ../README.md


def test_every_link_between_documents_leads_to_a_file_that_is_there():
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", document.read_text(encoding="utf-8")):
            assert (document.parent / target).is_file(), f"{document.name} links {target}"
