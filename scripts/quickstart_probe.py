"""Use the quick start's project as a person would; run by ``check_install.py`` in that project.

``before-worker`` logs into the admin, uploads an image through the add form and
checks what is shown while it waits: the page's placeholder and its status URL,
the admin's thumbnail column, the job dashboard with its own templates.
``after-worker`` checks what the worker made: the page's image served from
MEDIA_URL, the status endpoint's URLs, the emptied dashboard. Any missing
template, static file or URL fails it.
"""

from __future__ import annotations

import io
import os
import re
import sys
from html import unescape
from importlib.metadata import metadata
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
sys.path.insert(0, os.getcwd())

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from items.models import Item  # noqa: E402
from PIL import Image  # noqa: E402

import attachments  # noqa: E402

JOB_TEMPLATES = {
    "admin/attachments/job/change_list.html",
    "admin/attachments/job/summary.html",
    "admin/attachments/job/styles.html",
}
IMG = re.compile(r"<img\b[^>]*>")


def check(condition: object, message: str) -> None:
    if not condition:
        sys.exit(f"FAILED: {message}")


def attributes(tag: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}


def get(client: Client, url: str, status: int = 200):
    response = client.get(url)
    check(response.status_code == status, f"GET {url}: {response.status_code}, not {status}")
    return response


def static_file(url: str) -> None:
    """The static file behind ``url`` exists in the installed package."""
    from django.conf import settings

    check(url.startswith(settings.STATIC_URL), f"{url} is not a static URL")
    path = url.removeprefix(settings.STATIC_URL)
    check(finders.find(path), f"static file {path} is missing")


def page_image(client: Client) -> dict[str, str]:
    """The attributes of the page's one <img>; its script's file must exist."""
    html = get(client, "/items/").content.decode()
    (script,) = re.findall(r'<script src="([^"]+)"', html) or [""]
    static_file(script)
    images = [attributes(tag) for tag in IMG.findall(html)]
    check(len(images) == 1, f"the page shows {len(images)} images, not 1: {images}")
    return images[0]


def dashboard(client: Client) -> str:
    response = get(client, "/admin/attachments/job/")
    used = {template.name for template in response.templates}
    check(used >= JOB_TEMPLATES, f"the job dashboard did not use {sorted(JOB_TEMPLATES - used)}")
    return response.content.decode()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def before_worker(client: Client) -> None:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "admin")
    client.force_login(user)
    get(client, "/admin/items/item/add/")
    upload = SimpleUploadedFile("Red Square.png", png(), content_type="image/png")
    response = client.post("/admin/items/item/add/", {"title": "Red", "image": upload})
    check(response.status_code == 302, f"the admin's add form said {response.status_code}")
    item = Item.objects.get()
    check(item.image.state == "processing", f"the upload is {item.image.state!r}")

    img = page_image(client)
    static_file(img["src"])  # the placeholder
    check(img.get("alt") == "Red", f"the page's <img> is {img}")
    status = get(client, img["data-attachment-status"]).json()
    check(status["state"] == "processing", f"the status endpoint says {status}")
    check("still processing" in get(client, "/items/").content.decode(), "no processing text")

    changelist = get(client, "/admin/items/item/").content.decode()
    thumbnails = [attributes(tag) for tag in IMG.findall(changelist)]
    check(any(t.get("data-state") == "processing" for t in thumbnails), "no thumbnail column")
    html = dashboard(client)
    check('class="job-state waiting"' in html, "the dashboard does not list the waiting job")


def after_worker(client: Client) -> None:
    client.force_login(get_user_model().objects.get(username="admin"))
    item = Item.objects.get()
    check(item.image.state == "ready", f"after the worker the upload is {item.image.state!r}")
    Item.objects.create(title="No image")  # a blank field renders no <img> at all
    img = page_image(client)
    check("data-attachment-status" not in img, f"a ready image still polls: {img}")
    response = client.get(img["src"])
    check(response.status_code == 200, f"GET {img['src']}: {response.status_code}")
    thumb = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    check(thumb.size == (100, 67), f"the thumb is {thumb.size}")
    status = get(client, f"/attachments/status/{_token(item)}/").json()
    check(status["state"] == "ready", f"the status endpoint says {status}")
    check(status["urls"]["thumb"] == img["src"], f"status URLs {status['urls']} vs {img['src']}")
    html = dashboard(client)
    check('class="job-state' not in html, "the dashboard still lists a job")


def _token(item: Item) -> str:
    from attachments import status

    return status.token(item.image)


def main() -> None:
    check(
        Path(attachments.__file__).is_relative_to(sys.prefix),
        f"attachments comes from {attachments.__file__}, not from the virtualenv",
    )
    classifiers = metadata("django-delayed-attachments").get_all("Classifier")
    for tested in (
        "Programming Language :: Python :: {}.{}".format(*sys.version_info[:2]),
        "Framework :: Django :: {}.{}".format(*django.VERSION[:2]),
    ):
        check(tested in classifiers, f"the classifiers lack {tested!r}, which this run tests")
    setup_test_environment()  # records the templates each response used
    phases = {"before-worker": before_worker, "after-worker": after_worker}
    phases[sys.argv[1]](Client())
    print(f"{sys.argv[1]}: ok")


if __name__ == "__main__":
    main()
