"""The page of ``tconv serve`` in a real headless Chromium (issue 10), driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); no browser is
downloaded. Skipped where they are missing, except under ``TCONV_REQUIRE_ORACLES`` (CI),
where that is a failure. A screenshot of each state goes to ``$TCONV_SCREENSHOTS``
(default ``tests/_screenshots``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TCONV_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TCONV_CHROMEDRIVER", "/usr/bin/chromedriver")
SEED = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
REFUSED = "keras.Conv2DTranspose(512, 3, strides=2, padding='same', dilation_rate=2)"
SHOTS = Path(os.environ.get("TCONV_SCREENSHOTS") or Path(__file__).parent / "_screenshots")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1100")


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    for module in ("selenium", "starlette", "uvicorn"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("TCONV_REQUIRE_ORACLES"):
            pytest.fail(f"the end-to-end test must run here: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tconv-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site():
    if _missing():
        pytest.skip("see the browser fixture")
    from tconv.web import background

    with background() as url:
        yield url


def _wait(driver, condition, what, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception as exc:  # a timeout: say what was awaited and what the page shows
        text = lambda i: d_text(driver, i)  # noqa: E731
        raise AssertionError(f"waited {timeout}s for {what}; output-shape={text('output-shape')!r} "
                             f"error={text('error')!r} url={driver.current_url}") from exc


def d_text(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def _picture(driver) -> str:
    return driver.execute_script("const s = document.querySelector('#picture svg'); return s ? s.outerHTML : '';")


def _settled(driver) -> bool:
    return driver.execute_script("return !document.body.dataset.busy;")


def _shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / name))


def test_the_page_answers_the_seed_question_and_follows_the_arguments(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    # 1. the seed's case, from a link
    d.get(f"{site}?{urllib.parse.urlencode({'spec': SEED, 'input': '8,8,1024'})}")
    _wait(d, lambda d: d_text(d, "output-shape") == "16 × 16 × 512", "the seed's output shape")
    _wait(d, lambda d: _picture(d) and _settled(d), "the seed's picture")
    seed_picture = _picture(d)
    assert 'data-view="scatter"' in seed_picture
    assert "crop_lo" in d_text(d, "explanation") and "17" in d_text(d, "explanation")
    assert not d.find_element(By.ID, "error").is_displayed()
    _shot(d, "1-seed.png")

    # 2. stride 1: the shape and the picture change, and the URL follows
    Select(d.find_element(By.ID, "field-strides")).select_by_value("1")
    _wait(d, lambda d: d_text(d, "output-shape") == "8 × 8 × 512", "the stride-1 output shape")
    _wait(d, lambda d: _settled(d) and _picture(d) and _picture(d) != seed_picture, "a new picture")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(d.current_url).query)
    assert query["spec"] == ["keras.Conv2DTranspose(512, 3, strides=1, padding='same')"]
    assert query["input"] == ["8,8,1024"]
    _shot(d, "2-stride-1.png")

    # back and forward
    d.back()
    _wait(d, lambda d: d_text(d, "output-shape") == "16 × 16 × 512", "the seed again after back")
    _wait(d, lambda d: _settled(d) and _picture(d) == seed_picture, "the seed's picture after back")
    assert Select(d.find_element(By.ID, "field-strides")).first_selected_option.get_attribute("value") == "2"
    d.forward()
    _wait(d, lambda d: d_text(d, "output-shape") == "8 × 8 × 512", "stride 1 again after forward")

    # 3. a configuration Keras refuses: the refusal, in Keras' words, in #error
    box = d.find_element(By.ID, "spec-text")
    box.clear()
    box.send_keys(REFUSED)
    d.find_element(By.ID, "apply").click()
    _wait(d, lambda d: d.find_element(By.ID, "error").is_displayed()
          and "not supported in conjunction with `dilation_rate > 1`" in d_text(d, "error"), "the refusal")
    _wait(d, _settled, "the page to settle")
    assert d_text(d, "output-shape") == "refused"
    assert "Keras refuses this" in d_text(d, "error")
    assert "(refused)" in Select(d.find_element(By.ID, "field-dilation_rate")).first_selected_option.text
    _shot(d, "3-refused.png")


def test_switching_framework_shows_that_frameworks_layer(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(site)
    _wait(d, lambda d: d_text(d, "output-shape") == "16 × 16 × 512" and _settled(d), "the seed by default")
    Select(d.find_element(By.ID, "framework")).select_by_value("torch")
    _wait(d, lambda d: "torch.nn.ConvTranspose2d" in d_text(d, "callee") and _settled(d), "the torch layer")
    assert d_text(d, "output-shape") == "512 × 16 × 16"
    assert d.find_element(By.ID, "field-output_padding")
    _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#equivalents details")) == 4, "four equivalents")
    _shot(d, "4-torch.png")

    # the other drawings, and the scatter animation frame by frame
    d.find_element(By.ID, "view-overlap").click()
    _wait(d, lambda d: 'data-view="overlap"' in _picture(d), "the overlap map")
    d.find_element(By.ID, "view-scatter").click()
    _wait(d, lambda d: 'data-view="scatter"' in _picture(d) and d.find_element(By.ID, "play").is_displayed(),
          "the scatter view")
    d.find_element(By.ID, "play").click()
    _wait(d, lambda d: 'data-kind="step"' in _picture(d) and "frame 2 of 65" in d_text(d, "frame-caption"),
          "the animation's second step")
    _shot(d, "5-torch-scatter-playing.png")
    d.find_element(By.ID, "play").click()  # stop
    assert "play" in d_text(d, "play")
