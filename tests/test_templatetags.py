"""``{% attachment_picture %}``: the exact markup in every state an attachment can be in.

(``attachment_img`` and ``attachment_script`` are tested with the status endpoint,
in test_status.py.)
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.template import Context, Template, TemplateSyntaxError

from attachments import plan, status, storage
from demo_site.models import Banner, Item
from tests import images
from tests.uploads import work

pytestmark = pytest.mark.django_db

PLACEHOLDER = "/static/attachments/processing.svg"
FAILED = "/static/attachments/failed.svg"
TAG = '{% attachment_picture banner.image "hero" sizes="(min-width: 60em) 50vw, 100vw" alt="A" %}'
SIZES = "(min-width: 60em) 50vw, 100vw"


def render(source: str, **context) -> str:
    return Template("{% load attachments %}" + source).render(Context(context))


def banner(data: bytes | None = None) -> Banner:
    made = Banner(title="x")
    made.image.save("sea.jpg", ContentFile(data or images.jpeg((1600, 1200))))
    return made


def ready(data: bytes | None = None) -> Banner:
    pk = banner(data).pk
    work()
    return Banner.objects.get(pk=pk)


def url(made: Banner, width: int, ext: str) -> str:
    fingerprint = plan.made(made.image_styles)["hero"].fingerprint
    root = made.image.name.rsplit(".", 1)[0]
    return f"/media/{root}-hero-{width}w-{fingerprint}.{ext}"


def srcset(made: Banner, widths: list[int], ext: str) -> str:
    return ", ".join(f"{url(made, w, ext)} {w}w" for w in widths)


def test_a_ready_picture_has_a_source_per_format_best_first_and_an_img_fallback():
    made = ready()
    widths = [320, 640, 1280]
    assert render(TAG, banner=made) == (
        "<picture>"
        f'<source sizes="{SIZES}" srcset="{srcset(made, widths, "avif")}" type="image/avif">'
        f'<source sizes="{SIZES}" srcset="{srcset(made, widths, "webp")}" type="image/webp">'
        f'<img alt="A" data-attachment-state="ready" height="720" sizes="{SIZES}" '
        f'src="{url(made, 1280, "jpg")}" srcset="{srcset(made, widths, "jpg")}" width="1280">'
        "</picture>"
    )
    # Every one of them is a file.
    entry = plan.made(made.image_styles)["hero"]
    assert all(
        made.image.storage.exists(name)
        for name in storage.made_names(made.image.name, "hero", entry)
    )


def test_widths_past_the_original_become_one_file_at_the_widest_it_holds():
    made = ready(images.jpeg((800, 600)))  # 16:9 of it: 800x450
    html = render(
        '{% attachment_picture banner.image "hero" loading="lazy" decoding="async" class="b" %}',
        banner=made,
    )
    widths = [320, 640, 800]
    assert html == (
        "<picture>"
        f'<source sizes="100vw" srcset="{srcset(made, widths, "avif")}" type="image/avif">'
        f'<source sizes="100vw" srcset="{srcset(made, widths, "webp")}" type="image/webp">'
        '<img alt="" class="b" data-attachment-state="ready" decoding="async" height="450" '
        f'loading="lazy" sizes="100vw" src="{url(made, 800, "jpg")}" '
        f'srcset="{srcset(made, widths, "jpg")}" width="800">'
        "</picture>"
    )


def test_while_processing_the_img_is_the_placeholder_that_swaps_itself():
    made = banner()
    html = render(TAG, banner=made)
    assert html == (
        "<picture>"
        f'<img alt="A" data-attachment-sizes="{SIZES}" data-attachment-state="processing" '
        f'data-attachment-status="{status.status_url(made.image)}" '
        f'data-attachment-style="hero" height="720" src="{PLACEHOLDER}" width="1280">'
        "</picture>"
    )


def test_the_status_endpoint_gives_a_placeholder_its_sources(client):
    made = banner()
    polled = status.status_url(made.image)
    assert client.get(polled).json() == {
        "state": "processing",
        "urls": {"hero": PLACEHOLDER},
        "pictures": {},
    }
    work()
    made = Banner.objects.get(pk=made.pk)
    widths = [320, 640, 1280]
    assert client.get(polled).json() == {
        "state": "ready",
        "urls": {"hero": url(made, 1280, "jpg")},
        "pictures": {
            "hero": {
                "sources": [
                    {"type": "image/avif", "srcset": srcset(made, widths, "avif")},
                    {"type": "image/webp", "srcset": srcset(made, widths, "webp")},
                ],
                "srcset": srcset(made, widths, "jpg"),
            }
        },
    }


def test_a_failed_picture_is_the_failed_image_for_good():
    made = ready(images.truncated(images.jpeg((640, 480)), keep=0.3))
    assert render(TAG, banner=made) == (
        "<picture>"
        f'<img alt="A" data-attachment-state="failed" height="360" src="{FAILED}" width="640">'
        "</picture>"
    )


def test_files_from_an_older_declaration_are_served_until_made_again(monkeypatch):
    made = ready(images.jpeg((1000, 750)))
    field = Banner._meta.get_field("image")
    styles = dict(field.styles)
    from attachments.styles import parse_styles

    newer = {"widths": [320, 640, 1280, 1920], "formats": ["avif", "jpeg"], "crop": "16:9"}
    monkeypatch.setattr(field, "styles", {**styles, **parse_styles({"hero": newer})})
    assert field.due(made.image_styles) == ["hero"]
    widths = [320, 640, 1000]
    html = render('{% attachment_picture banner.image "hero" %}', banner=made)
    # What the record says was made: three formats, the original's width at most.
    assert html == (
        "<picture>"
        f'<source sizes="100vw" srcset="{srcset(made, widths, "avif")}" type="image/avif">'
        f'<source sizes="100vw" srcset="{srcset(made, widths, "webp")}" type="image/webp">'
        '<img alt="" data-attachment-state="ready" height="562" sizes="100vw" '
        f'src="{url(made, 1000, "jpg")}" srcset="{srcset(made, widths, "jpg")}" width="1000">'
        "</picture>"
    )


def test_a_style_not_made_yet_shows_what_stands_in_for_it_without_polling():
    made = ready(images.jpeg((1000, 750)))
    # Published, but the style is not made (added after the upload): the original stands in.
    Banner.objects.filter(pk=made.pk).update(image_styles={"original": [1000, 750]})
    made = Banner.objects.get(pk=made.pk)
    assert render(TAG, banner=made) == (
        "<picture>"
        f'<img alt="A" data-attachment-state="ready" height="562" src="{made.image.url}" '
        'width="1000">'
        "</picture>"
    )


def test_nothing_without_a_file():
    assert render(TAG, banner=Banner(title="x")) == ""


def test_only_a_declared_responsive_style():
    made = banner()
    with pytest.raises(TemplateSyntaxError, match="no style 'huge'"):
        render('{% attachment_picture banner.image "huge" %}', banner=made)
    item = Item(title="x")
    item.image.save("a.jpg", ContentFile(images.jpeg((320, 240))))
    with pytest.raises(TemplateSyntaxError, match="declares no widths; use attachment_img"):
        render('{% attachment_picture item.image "square" %}', item=item)


def test_made_in_the_request_it_is_a_picture_at_once_and_still_polls(monkeypatch):
    monkeypatch.setattr(Banner._meta.get_field("image"), "only_process", ("hero",))
    made = banner(images.jpeg((800, 600)))
    assert made.image.processing
    html = render(TAG, banner=made)
    widths = [320, 640, 800]
    assert html == (
        "<picture>"
        f'<source sizes="{SIZES}" srcset="{srcset(made, widths, "avif")}" type="image/avif">'
        f'<source sizes="{SIZES}" srcset="{srcset(made, widths, "webp")}" type="image/webp">'
        f'<img alt="A" data-attachment-state="processing" '
        f'data-attachment-status="{status.status_url(made.image)}" data-attachment-style="hero" '
        f'height="450" sizes="{SIZES}" src="{url(made, 800, "jpg")}" '
        f'srcset="{srcset(made, widths, "jpg")}" width="800">'
        "</picture>"
    )


@pytest.mark.parametrize(
    "tag",
    [
        '{% attachment_img item.image "thumb" style="border-radius: 6px" %}',
        '{% attachment_picture item.image "hero" style="border-radius: 6px" %}',
    ],
)
def test_a_style_given_to_the_tag_keeps_the_previews_blur(tag):
    photo = ContentFile(images.jpeg_with_thumbnail((1600, 1200)))
    item = Banner(title="x") if "picture" in tag else Item(title="x")
    item.image.save("photo.jpg", photo)
    html = render(tag, item=item)
    assert html.count(" style=") == 1
    style = html.split(' style="')[1].split('"')[0]
    assert "filter: blur(" in style
    assert style.endswith("; border-radius: 6px")  # the page's rules last: they win
    work()
    item.refresh_from_db()
    assert 'style="border-radius: 6px"' in render(tag, item=item)
