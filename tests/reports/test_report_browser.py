"""A real browser reads the report: headless Chromium (Debian package) loads the HTML from disk."""
from __future__ import annotations

import pytest

from llmaccel.reports.comparison.browser import check_html, find_browser
from tests.reports._specs import write_tiny_report

_, _, WHY = find_browser()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no headless browser: {WHY}")


def test_chromium_renders_the_report(tmp_path):
    rc, out = write_tiny_report(tmp_path)
    assert rc == 0
    c = check_html(out / "report.html")
    assert c.console_errors == []
    assert len(c.images) == 4 and c.undecoded_images == []       # every plot decoded by the browser
    # not blank: a page of plots and tables has many colours and a good share of non-white pixels
    assert c.screenshot_colours > 50 and c.screenshot_nonwhite_fraction > 0.05


def test_chromium_sees_a_broken_image(tmp_path):
    """The check itself can fail: a corrupted inline PNG is reported as undecoded, with a console error."""
    rc, out = write_tiny_report(tmp_path)
    page = out / "report.html"
    html = page.read_text()
    i = html.index("base64,") + len("base64,")
    page.write_text(html[:i] + "AAAA" + html[i + 400:])
    c = check_html(page)
    assert len(c.undecoded_images) == 1
