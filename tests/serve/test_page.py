"""The search page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright): search, weight bars,
dominant signal and confidence, result cards with keyframes and score bars, and a player that starts at the segment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium); CI installs it"
)


def test_search_page_in_chromium(live_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            external: list[str] = []
            page.on("request", lambda req: None if req.url.startswith(live_url) else external.append(req.url))

            page.goto(live_url + "/")
            expect(page.locator("#status")).to_have_text("ready", timeout=15_000)
            page.fill("#q", "a colourful Mandelbrot fractal zooming in")
            page.click("#search-btn")
            page.wait_for_selector("#results .hit", timeout=30_000)

            # Routing: one bar per signal, widths from the weights, dominant + confidence shown.
            bars = page.locator("#weights .bar")
            expect(bars).to_have_count(4)
            signals = bars.evaluate_all("els => els.map(e => e.dataset.signal)")
            assert sorted(signals) == ["audio", "metadata", "transcription", "visual"]
            widths = bars.locator(".bar-fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
            assert abs(sum(widths) - 100) <= 3 and max(widths) > 0
            dominant = page.inner_text("#dominant")
            assert dominant == signals[widths.index(max(widths))]
            assert page.inner_text("#confidence").endswith("%")

            # Results: keyframe thumbnail actually loaded, per-signal score bars, times.
            first = page.locator("#results .hit").first
            img = first.locator("img.thumb")
            expect(img).to_be_visible()
            page.wait_for_function(
                "() => { const i = document.querySelector('#results .hit img.thumb'); "
                "return i && i.complete && i.naturalWidth > 0; }",
                timeout=15_000,
            )
            assert first.locator(".scores .bar").count() >= 1
            assert first.locator(".hit-meta").inner_text().split(" · ")[0].endswith(".mp4")
            assert first.locator(".hit-title").inner_text().strip()

            # Not escalated: the badge stays hidden.
            expect(page.locator("#escalated")).to_be_hidden()

            # Player: the hit that starts latest, so seeking is visible; it must start at the segment (media fragment
            # + Range requests) and show a decoded frame.
            starts = page.locator("#results .hit .hit-meta").evaluate_all(
                "els => els.map(e => e.textContent.split(' · ')[1].split('–')[0])"
            )
            seconds = [int(m) * 60 + int(s) for m, s in (t.split(":") for t in starts)]
            pick = seconds.index(max(seconds))
            page.locator("#results .hit .thumb-btn").nth(pick).click()
            expect(page.locator("#player-panel")).to_be_visible()
            src = page.get_attribute("#player", "src")
            assert src and "#t=" in src and src.startswith("/media/")
            page.wait_for_function("() => document.querySelector('#player').readyState >= 2", timeout=15_000)
            page.evaluate("() => document.querySelector('#player').pause()")
            current = page.evaluate("() => document.querySelector('#player').currentTime")
            assert abs(current - seconds[pick]) < 1.0, (current, seconds[pick])

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "search-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            shutil.copy(shot, tmp_path / "search-page.png")

            # Text from the user is shown as text, never parsed as markup.
            page.fill("#q", '<img src=x onerror="window.pwned=1"><b>bold</b>')
            page.click("#search-btn")
            expect(page.locator("#summary")).to_contain_text("<b>bold</b>", timeout=15_000)
            assert page.locator("#summary b").count() == 0
            assert page.evaluate("() => window.pwned === undefined")

            # Errors from the API appear in the alert box.
            page.fill("#q", "x" * 1000)
            page.evaluate("() => { document.querySelector('#q').value = 'bad \\u0007 bell'; }")
            page.click("#search-btn")
            expect(page.locator("#error")).to_contain_text("control characters", timeout=15_000)

            assert not external, f"the page fetched external URLs: {external}"
            assert not [e for e in errors if "Failed to load resource" not in e], errors
        finally:
            browser.close()
