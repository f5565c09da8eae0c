"""The page's own start: a template and scripts that disagree stop it with the missing element's name."""
from __future__ import annotations

import pytest

from .support.browser import launch

pytestmark = pytest.mark.browser


def test_a_page_without_an_element_its_scripts_need_says_which(playwright, serve):
    server = serve()
    browser = launch(playwright)
    try:
        page = browser.new_page()

        def rename_cancel(route):  # as if the template renamed the Cancel button and the scripts did not follow
            response = route.fetch()
            route.fulfill(response=response, body=response.text().replace('id="cancel"', 'id="stop-job"'))

        page.route(server.url + "/", rename_cancel)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.wait_for_selector("p.message.error", timeout=15_000)
        shown = page.inner_text("p.message.error")
        assert shown.startswith("This page cannot start: the page has no element #cancel"), shown
        assert any("#cancel" in error for error in errors), errors  # and the console names it too
    finally:
        browser.close()
