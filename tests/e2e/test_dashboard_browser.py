"""The dashboard in headless Chromium: an article goes through the pipeline and its alert appears live, with
the Arabic right-to-left and its matched terms highlighted; clicking it opens the story with both languages.
The map and the alert list show the places a story reports on, not those of its background paragraphs.

Needs Debian's chromium (`apt-get install chromium`); Playwright drives it (no browser download).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.store import feeds as feed_store
from newsmon.store.feeds import FeedState
from tests.api.conftest import make_settings, start_api, stop_api
from tests.api.pipeline import ARABIC, ENGLISH, LONG, publish_through_pipeline

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium); no browser download here")
    return CHROMIUM


async def test_live_alert_story_and_screenshot(chromium: Path, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    api, stop, task = await start_api(make_settings(tmp_path))
    url = str(api.settings.feeds[0].url)
    await feed_store.sync_feeds(api.store, [FeedState(id="cfg-feed", url=url, config_url=url, interval=300,
                                                      current_interval=300, name="Configured")], now=1.0)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium), args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 1100}, locale="en-GB")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{api.url}/dashboard?token={api.admin}")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            assert "token=" not in page.url  # the token is moved to localStorage, out of the address bar

            await publish_through_pipeline(api, ARABIC, ENGLISH)

            item = page.locator(".alert").first
            await expect(item).to_be_visible(timeout=15_000)
            title = item.locator(".title")
            await expect(title).to_have_attribute("dir", "rtl")
            assert await title.evaluate("e => getComputedStyle(e).direction") == "rtl"
            marks = await title.locator("mark").all_text_contents()
            assert "حلب" in marks, marks
            await expect(page.locator("#map circle.hit[data-place=aleppo]")).to_have_count(1, timeout=10_000)

            await item.click()
            story = page.locator("#story")
            await expect(story).to_be_visible()
            await expect(story.locator(".source")).to_have_count(2, timeout=10_000)
            langs = set(await story.locator(".source").evaluate_all("els => els.map(e => e.lang)"))
            assert langs == {"ar", "en"}
            await expect(story.locator(".source[lang=ar]")).to_have_attribute("dir", "rtl")

            await page.evaluate("() => window.scrollTo(0, 0)")
            await page.reload()  # tables and chart as an operator opening the page sees them
            await expect(page.locator("#feeds tbody tr")).to_have_count(1, timeout=10_000)
            await expect(page.locator("#deliveries button.replay")).to_have_count(1, timeout=10_000)
            await expect(page.locator("#chart polyline")).to_have_count(1)
            await page.locator(".alert").first.click()
            await expect(page.locator("#story .source")).to_have_count(2, timeout=10_000)
            await page.evaluate("() => window.scrollTo(0, 0)")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            await page.locator("#deliveries button.replay").click()
            await expect(page.locator("#delivery-counts")).to_contain_text("replayed 1", timeout=10_000)
            assert errors == []
            await browser.close()
    finally:
        await stop_api(api, stop, task)


async def test_map_shows_the_places_a_story_reports_on(chromium: Path, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    api, stop, task = await start_api(make_settings(tmp_path))
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium), args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
            await page.goto(f"{api.url}/dashboard?token={api.admin}")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)

            await publish_through_pipeline(api, LONG)  # Raqqa and Deir ez-Zor only in its background

            item = page.locator(".alert").first
            await expect(item).to_be_visible(timeout=15_000)
            await expect(item.locator(".meta")).to_contain_text("Aleppo")
            await expect(item.locator(".meta").first).not_to_contain_text("Raqqa")
            await expect(page.locator("#map circle.hit[data-place=aleppo]")).to_have_count(1, timeout=10_000)
            await page.reload()  # the same from the API's listings as from the live stream
            await expect(page.locator(".alert")).to_have_count(1, timeout=10_000)
            await expect(page.locator("#map circle.hit[data-place=aleppo]")).to_have_count(1, timeout=10_000)
            for place in ("raqqa", "deir-ez-zor"):
                await expect(page.locator(f"#map circle.hit[data-place={place}]")).to_have_count(0)
            await browser.close()
    finally:
        await stop_api(api, stop, task)
