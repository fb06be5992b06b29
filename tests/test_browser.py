"""The step-through page in a real browser: Debian's headless Chromium driven by Selenium.

Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium (``make chromium`` installs
them), so Selenium Manager never downloads a browser; without them this test fails.
"""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tinygrad_edu.article import build_model, run_sample
from tinygrad_edu.explain import explain
from tinygrad_edu.stepthrough import frames, write_page

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
GALLERY = Path(__file__).resolve().parent.parent / "viz"
HIGHLIGHT = "#e6550d"


def _browser() -> webdriver.Chrome:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make chromium`"
    assert DRIVER.exists(), f"{DRIVER} is missing: run `make chromium`"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)


def _shown(browser: webdriver.Chrome) -> tuple[str, str, str]:
    """(the visible frame's node, the step text's node, the step text)."""
    visible = [f for f in browser.find_elements(By.CSS_SELECTOR, ".frame") if f.is_displayed()]
    assert len(visible) == 1
    text = browser.find_element(By.ID, "step-text")
    node = visible[0].get_attribute("data-node") or ""
    # In the SVG, the node is drawn with the highlight colour.
    drawn = visible[0].find_element(By.XPATH, f".//*[name()='g'][*[name()='title']='{node}']")
    assert HIGHLIGHT in (drawn.get_attribute("innerHTML") or "")
    return node, text.get_attribute("data-node") or "", text.text


def test_the_page_steps_forward_and_back_with_the_keyboard(tmp_path: Path) -> None:
    model = build_model(kink="article")
    loss, _ = run_sample(model, 3)
    expected = [
        (f"v{s.index}", line)
        for s, line in zip(explain(loss).steps, str(explain(loss)).splitlines(), strict=True)
    ]
    assert [(f.node, f.text) for f in frames(loss, model)] == expected
    title = "The article's model, sample 3, --kink article"  # as the gallery's
    page = write_page(loss, tmp_path / "steps.html", model, title)
    browser = _browser()
    try:
        browser.get(page.as_uri())
        body = browser.find_element(By.TAG_NAME, "body")
        seen = []
        for _ in expected:
            node, text_node, text = _shown(browser)
            seen.append((node, text))
            assert text_node == node
            if text.startswith("δ(o2) = "):  # δ4 = -1 carried back by the article's branch
                browser.save_screenshot(str(GALLERY / "stepthrough-article.png"))
            body.send_keys(Keys.ARROW_RIGHT)
        assert seen == expected
        assert _shown(browser)[0] == expected[-1][0]  # the last step stays the last
        for k in range(len(expected) - 2, len(expected) - 5, -1):
            body.send_keys(Keys.ARROW_LEFT)
            node, _, text = _shown(browser)
            assert (node, text) == expected[k]
    finally:
        browser.quit()
