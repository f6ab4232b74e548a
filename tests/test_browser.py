"""In real headless Chromium: upload in the admin, see the placeholder, see it swapped.

Screenshots go to artifacts/screenshots/ (git-ignored), for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from attachments import previews, processing
from attachments.models import Job
from demo_site.models import Item
from tests import images

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Debian's chromium and chromium-driver are needed (apt-get install them)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1200,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console_errors() reads it
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.implicitly_wait(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield chrome
    chrome.quit()


@pytest.fixture
def site(settings, live_server) -> str:
    settings.ROOT_URLCONF = "tests.urls_browser"
    return live_server.url


def wait(browser, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def console_errors(browser) -> list[str]:
    """What the page logged as errors since the last call: failed loads, script errors."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def log_in(browser, site: str) -> None:
    """Log into the admin as ``admin_user``."""
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser, lambda b: b.find_elements(By.ID, "user-tools"))  # logged in


def preview_src(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, ".attachment-preview img").get_attribute("src")


def test_admin_upload_shows_placeholder_then_the_thumbnail_without_reload(
    browser, site, admin_user, start_worker, tmp_path
):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(images.jpeg((1600, 1200)))
    log_in(browser, site)
    browser.get(f"{site}/admin/demo_site/item/add/")
    browser.find_element(By.NAME, "title").send_keys("Holiday")
    browser.find_element(By.NAME, "image").send_keys(str(photo))
    browser.find_element(By.NAME, "_continue").click()

    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".attachment-preview img"))
    assert preview_src(browser).endswith("/static/attachments/processing.svg")
    assert "Processing…" in browser.find_element(By.CSS_SELECTOR, ".attachment-preview").text
    browser.save_screenshot(str(SHOTS / "admin-1-processing.png"))
    item_tab, page = browser.current_window_handle, browser.current_url

    # The dashboard, refreshing itself, shows the job waiting in its queue...
    browser.switch_to.new_window("tab")
    browser.get(f"{site}/admin/attachments/job/?_refresh=2")
    queue_row = "//div[@class='job-dashboard']//tr[th[normalize-space()='default']]"
    waiting = browser.find_element(By.XPATH, queue_row + "/td[1]").text
    assert waiting == "1"
    assert "demo_site.item.image" in browser.find_element(By.ID, "result_list").text
    browser.save_screenshot(str(SHOTS / "dashboard-1-waiting.png"))

    assert start_worker("--burst").wait(timeout=60) == 0

    # ...and, after its own refresh, the queue empty and the job counted as processed.
    wait(browser, lambda b: "The queue is empty." in b.page_source)
    processed = browser.find_elements(By.CSS_SELECTOR, "table.throughput tbody tr td.number")
    assert any(cell.text == "1" for cell in processed)
    browser.save_screenshot(str(SHOTS / "dashboard-2-done.png"))
    browser.switch_to.window(item_tab)
    item = Item.objects.get()
    thumb = item.image.styles["thumb"].url
    wait(browser, lambda b: preview_src(b).endswith(thumb))
    wait(
        browser,
        lambda b: (
            b.execute_script(
                "return document.querySelector('.attachment-preview img').naturalWidth"
            )
            == 100
        ),
    )
    assert browser.current_url == page  # swapped in place, no reload
    assert "Processing…" not in browser.find_element(By.CSS_SELECTOR, ".attachment-preview").text
    browser.save_screenshot(str(SHOTS / "admin-2-ready.png"))


def test_public_page_swaps_every_placeholder_in_place(browser, site, start_worker):
    from selenium.webdriver.common.by import By

    for title in ("One", "Two"):
        item = Item(title=title)
        item.image.save(f"{title}.png", ContentFile(images.png((400, 300), mode="RGBA")))
    browser.get(f"{site}/")
    sources = [img.get_attribute("src") for img in browser.find_elements(By.CSS_SELECTOR, "li img")]
    assert len(sources) == 2
    assert all(src.endswith("processing.svg") for src in sources)
    browser.save_screenshot(str(SHOTS / "public-1-processing.png"))

    assert start_worker("--burst").wait(timeout=60) == 0
    wait(
        browser,
        lambda b: all(
            # <stem>-square-<fingerprint>.png: the style's file, not a placeholder.
            re.search(r"-square-[0-9a-f]+\.png$", img.get_attribute("src"))
            and img.get_attribute("data-attachment-state") == "ready"
            for img in b.find_elements(By.CSS_SELECTOR, "li img")
        ),
    )
    # Swapped; now wait for the browser to have loaded the new images.
    wait(
        browser,
        lambda b: (
            b.execute_script(
                "return [...document.querySelectorAll('li img')]"
                ".map(i => [i.naturalWidth, i.naturalHeight])"
            )
            == [[200, 200], [200, 200]]
        ),
    )
    browser.save_screenshot(str(SHOTS / "public-2-ready.png"))


def test_public_page_shows_a_failure_in_place_and_stops_waiting(browser, site, start_worker):
    from selenium.webdriver.common.by import By

    for title, data in (
        ("Fine", images.png((400, 300), mode="RGBA")),
        ("Broken", images.truncated(images.jpeg((640, 480)), keep=0.3)),
    ):
        item = Item(title=title)
        item.image.save(f"{title}.png", ContentFile(data))
    browser.get(f"{site}/")
    labels = "return [...document.querySelectorAll('li .state')].filter(l => !l.hidden)"
    assert [label.text for label in browser.execute_script(labels)] == ["processing"] * 2
    browser.save_screenshot(str(SHOTS / "public-failed-1-processing.png"))

    assert start_worker("--burst").wait(timeout=60) == 0
    broken = "//li[div[normalize-space()='Broken']]"

    def settled(b) -> bool:
        img = b.find_element(By.XPATH, broken + "//img")
        return img.get_attribute("data-attachment-state") == "failed"

    wait(browser, settled)
    img = browser.find_element(By.XPATH, broken + "//img")
    assert img.get_attribute("src").endswith("/static/attachments/failed.svg")
    assert img.get_attribute("data-attachment-status") is None  # no longer polled
    # The label changed with the image: only "failed" shows for it.
    shown = browser.find_elements(By.XPATH, broken + "//div[@class='state']")
    assert [label.text for label in shown if label.is_displayed()] == ["failed"]
    # The page styles the state; the placeholder has loaded as an image.
    assert img.value_of_css_property("outline-style") == "solid"
    wait(browser, lambda b: b.execute_script("return arguments[0].naturalWidth", img) == 200)
    wait(
        browser,
        lambda b: (
            b.find_element(By.XPATH, "//li[div[normalize-space()='Fine']]//img").get_attribute(
                "data-attachment-state"
            )
            == "ready"
        ),
    )
    browser.save_screenshot(str(SHOTS / "public-failed-2-settled.png"))


def test_public_page_shows_the_blurred_preview_until_the_image(browser, site, start_worker):
    """Blurred previews while processing: one from the upload's EXIF thumbnail, rendered
    with the page, one the worker publishes while the page is open; then the styles."""
    from selenium.webdriver.common.by import By

    picture = images.landscape((1200, 800))
    camera = Item(title="Camera")
    camera.image.save("camera.jpg", ContentFile(images.jpeg_with_thumbnail(picture=picture)))
    scanner = Item(title="Scanner")
    scanner.image.save("scan.jpg", ContentFile(images.jpeg(picture=picture)))
    browser.get(f"{site}/")
    # What most sites' stylesheets say: a scaled image takes the shape of what it loaded,
    # the preview's 3:2 here, unless the preview keeps the style's square.
    browser.execute_script(
        "var s = document.createElement('style');"
        "s.textContent = 'img { max-width: 100%; height: auto; }';"
        "document.head.appendChild(s);"
    )

    def img(title: str):
        return browser.find_element(By.XPATH, f"//li[div[normalize-space()='{title}']]//img")

    def shown(title: str) -> dict[str, object]:
        return browser.execute_script(
            "var i = arguments[0]; return {src: i.src, filter: getComputedStyle(i).filter,"
            " fit: getComputedStyle(i).objectFit, complete: i.complete,"
            " natural: [i.naturalWidth, i.naturalHeight], box: [i.width, i.height]};",
            img(title),
        )

    def previewing(title: str) -> bool:
        now = shown(title)
        return str(now["src"]).startswith("data:image/webp;base64,") and bool(now["complete"])

    wait(browser, lambda b: previewing("Camera"))
    now = shown("Camera")
    assert now["filter"] == "blur(5px)"  # ceil(200 / 24 / 2)
    assert now["fit"] == "cover"  # a square style's box, covered as its crop will be
    width, height = now["natural"]  # the preview itself: the original's 3:2
    assert (width, height) == (24, 16)
    assert now["box"] == [200, 200]
    assert str(shown("Scanner")["src"]).endswith("/static/attachments/processing.svg")
    browser.save_screenshot(str(SHOTS / "preview-1-from-the-upload.png"))

    # The worker's first step for an upload without a thumbnail; the open page polls it in.
    job = Job.objects.get(object_id=str(scanner.pk))
    small = picture.copy()
    small.thumbnail((previews.SIDE, previews.SIDE))
    field = Item._meta.get_field("image")
    assert processing.publish_preview(field, job, previews.encode(small))
    wait(browser, lambda b: previewing("Scanner"))
    assert shown("Scanner")["filter"] == "blur(5px)"
    assert shown("Scanner")["box"] == [200, 200]
    browser.save_screenshot(str(SHOTS / "preview-2-from-the-status-reply.png"))

    assert start_worker("--burst").wait(timeout=60) == 0

    def settled(title: str) -> bool:
        now = shown(title)
        return bool(
            re.search(r"-square-[0-9a-f]+\.jpg$", str(now["src"]))
            and now["filter"] == "none"
            and now["natural"] == [200, 200]
        )

    wait(browser, lambda b: settled("Camera") and settled("Scanner"))
    assert img("Camera").get_attribute("data-attachment-blurred") is None
    browser.save_screenshot(str(SHOTS / "preview-3-ready.png"))


def test_a_picture_placeholder_fills_in_its_sources_and_the_browser_picks_one(
    browser, site, start_worker
):
    from selenium.webdriver.common.by import By

    from demo_site.models import Banner

    banner = Banner(title="Sea")
    banner.image.save("sea.jpg", ContentFile(images.jpeg((1600, 1200))))
    browser.get(f"{site}/banners/")
    img = browser.find_element(By.CSS_SELECTOR, "picture img")
    assert img.get_attribute("src").endswith("/static/attachments/processing.svg")
    assert browser.find_elements(By.CSS_SELECTOR, "picture source") == []
    # Its size, 16:9, is known while it waits: from the header probe in the upload.
    assert (img.get_dom_attribute("width"), img.get_dom_attribute("height")) == ("1280", "720")
    browser.save_screenshot(str(SHOTS / "picture-1-processing.png"))

    assert start_worker("--burst").wait(timeout=120) == 0
    # Swapped in place: a <source> per format but the last, then the browser chose one.
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "picture source")) == 2)
    types = [
        source.get_attribute("type")
        for source in browser.find_elements(By.CSS_SELECTOR, "picture source")
    ]
    assert types == ["image/avif", "image/webp"]
    chosen = wait(
        browser,
        lambda b: b.execute_script(
            "var i = document.querySelector('picture img');"
            "return i.complete && i.naturalWidth ? i.currentSrc : null;"
        ),
    )
    assert re.search(r"-hero-\d+w-[0-9a-f]+\.(avif|webp)$", chosen), chosen
    assert chosen.endswith(".avif")  # Chromium decodes AVIF, the first choice
    assert img.get_attribute("data-attachment-state") == "ready"
    assert img.get_attribute("data-attachment-sizes") is None
    browser.save_screenshot(str(SHOTS / "picture-2-ready.png"))


def test_the_admin_shows_a_banners_blurred_preview_and_then_its_image_in_the_forms_box(
    browser, site, admin_user, start_worker, tmp_path
):
    """A camera photo uploaded to a Banner: the admin form shows its blurred preview in the
    16:9 box the image will fill, not the 24-pixel preview at its own size, and the
    1280-pixel image it swaps in stays in that box."""
    from selenium.webdriver.common.by import By

    photo = tmp_path / "lake.jpg"
    photo.write_bytes(images.jpeg_with_thumbnail(picture=images.landscape((1600, 1200))))
    browser.get(f"{site}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser, lambda b: b.find_elements(By.ID, "user-tools"))
    browser.get(f"{site}/admin/demo_site/banner/add/")
    browser.find_element(By.NAME, "title").send_keys("Lake")
    browser.find_element(By.NAME, "image").send_keys(str(photo))
    browser.find_element(By.NAME, "_continue").click()

    def shown() -> dict[str, object]:
        return browser.execute_script(
            "var i = document.querySelector('.attachment-preview img');"
            "return {src: i.src, filter: getComputedStyle(i).filter, complete: i.complete,"
            " box: [i.width, i.height], natural: [i.naturalWidth, i.naturalHeight]};"
        )

    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".attachment-preview img"))
    now = shown()
    assert str(now["src"]).startswith("data:image/webp;base64,")
    assert now["filter"] == "blur(5px)"  # ceil(200 / 48): the box as displayed
    assert now["box"] == [200, 112]
    browser.save_screenshot(str(SHOTS / "admin-preview-1-blurred.png"))

    assert start_worker("--burst").wait(timeout=120) == 0
    wait(
        browser,
        lambda b: (
            re.search(r"-hero-1280w-[0-9a-f]+\.jpg$", str(shown()["src"]))
            and shown()["complete"]
            and shown()["filter"] == "none"
        ),
    )
    assert shown()["box"] == [200, 112]
    browser.save_screenshot(str(SHOTS / "admin-preview-2-ready.png"))


def test_the_demo_pages_log_no_errors_while_their_images_settle(browser, site, start_worker):
    """A visitor's console stays clean: no failed load (the favicon the demo's pages did
    not declare was a 404 on each), no script error from the previews or the pictures."""
    from selenium.webdriver.common.by import By

    from demo_site.models import Banner

    photo = images.jpeg_with_thumbnail(picture=images.landscape((1600, 1200)))
    Item(title="Lake").image.save("lake.jpg", ContentFile(photo))
    Banner(title="Lake").image.save("lake.jpg", ContentFile(photo))
    browser.get(f"{site}/")
    browser.switch_to.new_window("tab")
    browser.get(f"{site}/banners/")
    assert start_worker("--burst").wait(timeout=120) == 0
    for window, path in zip(browser.window_handles, ("/", "/banners/"), strict=True):
        browser.switch_to.window(window)
        wait(
            browser,
            lambda b: all(
                b.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", img
                )
                and img.get_attribute("data-attachment-state") == "ready"
                for img in b.find_elements(By.TAG_NAME, "img")
            ),
        )
        assert console_errors(browser) == [], path


def test_a_picture_opened_before_its_preview_gets_it_blurred_in_its_box_then_avif(
    browser, site, start_worker
):
    """A banner without an embedded thumbnail: the open page gets the worker's preview from
    the status reply, blurred in the 16:9 box even where images take their loaded shape,
    then the <picture>'s sources, and the browser picks AVIF."""

    from demo_site.models import Banner

    picture = images.landscape((1600, 1200))
    banner = Banner(title="Scan")
    banner.image.save("scan.png", ContentFile(images.encode(picture, "PNG")))
    browser.get(f"{site}/banners/")
    browser.execute_script(  # what most stylesheets say, over the demo's own aspect-ratio
        "var s = document.createElement('style');"
        "s.textContent = 'figure img { max-width: 100%; height: auto; aspect-ratio: auto; }';"
        "document.head.appendChild(s);"
    )

    def shown() -> dict[str, object]:
        return browser.execute_script(
            "var i = document.querySelector('picture img'); return {src: i.currentSrc,"
            " filter: getComputedStyle(i).filter, complete: i.complete, box: [i.width, i.height]};"
        )

    assert str(shown()["src"]).endswith("/static/attachments/processing.svg")
    job = Job.objects.get(object_id=str(banner.pk))
    small = picture.copy()
    small.thumbnail((previews.SIDE, previews.SIDE))
    field = Banner._meta.get_field("image")
    assert processing.publish_preview(field, job, previews.encode(small))
    wait(browser, lambda b: str(shown()["src"]).startswith("data:image/webp;base64,"))
    wait(browser, lambda b: shown()["complete"])
    width, height = shown()["box"]  # type: ignore[misc]
    assert abs(width / height - 16 / 9) < 0.01, (width, height)  # not the preview's 4:3
    assert shown()["filter"] != "none"
    browser.save_screenshot(str(SHOTS / "picture-preview-1-from-the-status-reply.png"))

    assert start_worker("--burst").wait(timeout=120) == 0
    wait(
        browser,
        lambda b: (
            str(shown()["src"]).endswith(".avif")
            and shown()["complete"]
            and shown()["filter"] == "none"
        ),
    )
    width, height = shown()["box"]  # type: ignore[misc]
    assert abs(width / height - 16 / 9) < 0.01, (width, height)
    assert console_errors(browser) == []
    browser.save_screenshot(str(SHOTS / "picture-preview-2-avif.png"))


def test_admin_click_on_the_picture_sets_the_focal_point_the_crops_follow(
    browser, site, admin_user, start_worker
):
    from PIL import Image, ImageStat
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # Grey, with a red band in its right quarter that the centred crop leaves out.
    picture = Image.new("RGB", (1600, 800), (150, 150, 150))
    picture.paste((220, 30, 30), (1200, 0, 1600, 800))
    item = Item(title="Band")
    item.image.save("band.png", ContentFile(images.encode(picture, "PNG")))
    assert start_worker("--burst").wait(timeout=60) == 0

    def redness(item: Item) -> float:
        square = item.image.styles["square"]
        with square.storage.open(square.name) as fp:
            red, green, _ = ImageStat.Stat(Image.open(fp).convert("RGB")).mean
        return red - green

    item = Item.objects.get(pk=item.pk)
    assert redness(item) == pytest.approx(0, abs=1)

    log_in(browser, site)
    browser.get(f"{site}/admin/demo_site/item/{item.pk}/change/")
    image = browser.find_element(By.CSS_SELECTOR, "[data-attachment-focus-image]")
    wait(browser, lambda b: b.execute_script("return arguments[0].naturalWidth", image) > 0)
    marker = browser.find_element(By.CSS_SELECTOR, "[data-attachment-focus-marker]")
    assert not marker.is_displayed()
    width, height = image.size["width"], image.size["height"]
    assert (width, height) == (300, 150)  # the original, shown 300px wide
    browser.save_screenshot(str(SHOTS / "focus-1-picker.png"))
    # Selenium offsets are from the element's centre: this is (0.9, 0.3).
    ActionChains(browser).move_to_element_with_offset(
        image, round(width * 0.4), round(-height * 0.2)
    ).click().perform()
    assert marker.is_displayed()
    field = browser.find_element(By.NAME, "image-focus")
    x, y = map(float, field.get_attribute("value").split(","))
    assert x == pytest.approx(0.9, abs=0.02)
    assert y == pytest.approx(0.3, abs=0.03)
    # From the keyboard too: down a tenth, then back up a fiftieth.
    image.send_keys(Keys.SHIFT, Keys.ARROW_DOWN)
    image.send_keys(Keys.ARROW_UP)
    moved = tuple(map(float, field.get_attribute("value").split(",")))
    assert moved == pytest.approx((x, y + 0.08), abs=0.001)
    x, y = moved
    browser.save_screenshot(str(SHOTS / "focus-2-clicked.png"))
    browser.find_element(By.NAME, "_continue").click()
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".messagelist .success"))

    item = Item.objects.get(pk=item.pk)
    assert item.image.focus == pytest.approx((x, y))
    before = item.image.styles["thumb"].name
    assert start_worker("--burst").wait(timeout=60) == 0
    item = Item.objects.get(pk=item.pk)
    assert item.image.styles["thumb"].name == before
    # The crop moved right, to the red band: half of it now.
    assert redness(item) == pytest.approx((220 - 30) / 2, abs=10)

    browser.get(f"{site}/admin/demo_site/item/{item.pk}/change/")
    marker = browser.find_element(By.CSS_SELECTOR, "[data-attachment-focus-marker]")
    assert marker.is_displayed()
    browser.save_screenshot(str(SHOTS / "focus-3-saved.png"))
    browser.get(f"{site}{item.image.styles['square'].url}")
    browser.save_screenshot(str(SHOTS / "focus-4-square.png"))
