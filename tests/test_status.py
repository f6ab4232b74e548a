"""The status endpoint and the template tag that pages use to swap placeholders."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.template import Context, Template, TemplateSyntaxError
from django.urls import reverse

from attachments import plan, status
from demo_site.models import Item
from tests import images
from tests.uploads import upload, work

pytestmark = pytest.mark.django_db

PLACEHOLDER = "/static/attachments/processing.svg"
FAILED = "/static/attachments/failed.svg"


def render(source: str, **context) -> str:
    return Template("{% load attachments %}" + source).render(Context(context))


def test_processing_status_has_placeholders_and_is_never_cached(client):
    item = upload()
    response = client.get(status.status_url(item.image))
    assert response.status_code == 200
    assert response.json() == {
        "state": "processing",
        "urls": {"thumb": PLACEHOLDER, "square": PLACEHOLDER},
    }
    assert "no-store" in response["Cache-Control"]


def test_ready_status_has_the_style_urls(client, django_assert_num_queries):
    item = upload()
    url = status.status_url(item.image)
    work()
    item.refresh_from_db()
    with django_assert_num_queries(1):
        response = client.get(url)
    assert response.json() == {
        "state": "ready",
        "urls": {
            "thumb": item.image.styles["thumb"].url,
            "square": item.image.styles["square"].url,
        },
    }
    assert "private" in response["Cache-Control"]
    assert "max-age=60" in response["Cache-Control"]


def test_failed_status_gives_the_failed_placeholder(client):
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    url = status.status_url(item.image)
    work()
    assert client.get(url).json() == {
        "state": "failed",
        "urls": {"thumb": FAILED, "square": FAILED},
    }


def test_tokens_are_signed_with_the_projects_secret(client, settings):
    item = upload()
    url = status.status_url(item.image)
    assert client.get(url).status_code == 200
    settings.SECRET_KEY = "another project's secret"
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        signing.dumps(["demo_site.item.image", "1"], salt="another.salt"),
        signing.dumps(["auth.user.password", "1"], salt="attachments.status"),
        signing.dumps("not-a-pair", salt="attachments.status"),
        # Validly signed, but the model cannot read the pk (another project's
        # token, a pk type changed since): as unknown as any other.
        signing.dumps(["demo_site.item.image", "not-a-number"], salt="attachments.status"),
        signing.dumps(["demo_site.item.image", ["1"]], salt="attachments.status"),
        signing.dumps(["demo_site.item.image", "9" * 30], salt="attachments.status"),
    ],
)
def test_bad_tokens_are_404(client, token):
    upload()
    response = client.get(f"/attachments/status/{token}/")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown or expired attachment"}


def test_tampered_token_is_404(client):
    item = upload()
    token = status.token(item.image)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(reverse("attachments:status", args=[tampered])).status_code == 404


def test_expired_token_is_404(client, settings, monkeypatch):
    item = upload()
    url = status.status_url(item.image)
    settings.ATTACHMENTS = {"STATUS_TOKEN_MAX_AGE": 60}
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    assert client.get(url).status_code == 404


def test_deleted_record_is_404(client):
    item = upload()
    url = status.status_url(item.image)
    Item.objects.filter(pk=item.pk).delete()
    assert client.get(url).status_code == 404


def test_only_get(client):
    item = upload()
    assert client.post(status.status_url(item.image)).status_code == 405


def test_tag_renders_a_self_updating_placeholder_while_processing():
    item = upload()
    html = render(
        '{% attachment_img item.image "square" alt="A cat" class="pic" data_role="hero" %}',
        item=item,
    )
    assert html.startswith("<img ")
    assert f'src="{PLACEHOLDER}"' in html
    assert 'width="200"' in html
    assert 'height="200"' in html
    assert 'data-role="hero"' in html
    assert 'alt="A cat"' in html
    assert 'class="pic"' in html
    assert f'data-attachment-status="{status.status_url(item.image)}"' in html
    assert 'data-attachment-style="square"' in html
    assert 'data-attachment-state="processing"' in html


def test_tag_renders_the_image_once_ready_without_polling():
    item = upload()
    work()
    item.refresh_from_db()
    html = render('{% attachment_img item.image "thumb" alt=item.title %}', item=item)
    assert f'src="{item.image.styles["thumb"].url}"' in html
    assert "data-attachment-status" not in html
    assert ('width="100"' in html, 'height="75"' in html) == (True, True)  # as made
    assert 'data-attachment-state="ready"' in html


def test_tag_knows_every_size_from_the_header_while_processing():
    # "100x100>" depends on the source: the upload's header probe gave its size.
    item = upload(images.jpeg((320, 240)))
    assert (item.image.width, item.image.height) == (320, 240)
    for loaded in (item, Item.objects.get(pk=item.pk)):
        html = render('{% attachment_img item.image "thumb" %}', item=loaded)
        assert ('width="100"' in html, 'height="75"' in html) == (True, True)
        assert f'src="{PLACEHOLDER}"' in html


def test_tag_shows_the_preview_blurred_while_processing():
    item = upload(images.jpeg_with_thumbnail((320, 240)))
    preview = plan.preview(item.image_styles)
    assert preview
    html = render('{% attachment_img item.image "thumb" %}', item=item)
    assert f'src="{preview}"' in html
    assert ('width="100"' in html, 'height="75"' in html) == (True, True)
    # About half a preview pixel as displayed: ceil(100 / 24 / 2) = 3 px.
    # The style's shape kept where the page scales images with height: auto.
    style = "filter: blur(3px); clip-path: inset(0); object-fit: cover; aspect-ratio: 100 / 75"
    assert f'style="{style}"' in html
    assert "data-attachment-blurred" in html
    assert "data-attachment-status" in html  # still swapped for the style once made
    work()
    item.refresh_from_db()
    html = render('{% attachment_img item.image "thumb" %}', item=item)
    assert f'src="{item.image.styles["thumb"].url}"' in html
    assert "blur" not in html
    assert "data-attachment-blurred" not in html


def test_status_brings_the_preview_while_processing_only(client):
    item = upload(images.jpeg_with_thumbnail((320, 240)))
    url = status.status_url(item.image)
    assert client.get(url).json() == {
        "state": "processing",
        "urls": {"thumb": PLACEHOLDER, "square": PLACEHOLDER},
        "preview": plan.preview(item.image_styles),
    }
    work()
    assert "preview" not in client.get(url).json()


def test_tag_renders_a_failed_attachment_as_failed_for_good():
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    work()
    item.refresh_from_db()
    html = render('{% attachment_img item.image "square" %}', item=item)
    assert f'src="{FAILED}"' in html
    assert 'data-attachment-state="failed"' in html  # for the page to style
    assert "data-attachment-status" not in html  # nothing left to wait for


def test_tag_renders_nothing_without_a_file():
    assert render('{% attachment_img item.image "thumb" %}', item=Item(title="x")) == ""


def test_tag_rejects_an_unknown_style():
    with pytest.raises(TemplateSyntaxError, match="no style 'huge'"):
        render('{% attachment_img item.image "huge" %}', item=upload())


def test_tag_without_the_apps_urls_still_renders_the_placeholder(settings):
    settings.ROOT_URLCONF = "tests.urls_without_attachments"
    html = render('{% attachment_img item.image "thumb" %}', item=upload())
    assert PLACEHOLDER in html
    assert "data-attachment-status" not in html


def test_script_tag():
    assert render("{% attachment_script %}") == (
        '<script src="/static/attachments/attachments.js" defer></script>'
    )


def test_public_page_polls_for_new_uploads(client):
    upload()
    page = client.get("/").content.decode()
    assert "data-attachment-status" in page
    assert "attachments/attachments.js" in page


def test_public_page_labels_each_attachment_with_its_state(client):
    upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    work()
    page = client.get("/").content.decode()
    assert FAILED in page
    assert '<div class="state" data-attachment-label="failed">failed</div>' in page
    assert '<div class="state" data-attachment-label="processing" hidden>' in page
