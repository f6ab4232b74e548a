from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from attachments.models import Job
from attachments.styles import parse_styles, smallest
from attachments.widgets import AttachmentWidget
from demo_site.forms import ItemForm
from demo_site.models import Item
from tests import images
from tests.uploads import upload, work

pytestmark = pytest.mark.django_db


def test_smallest_style_is_the_preview():
    styles = parse_styles({"big": "800x600", "thumb": "100x100>", "half": "50%", "w": "120"})
    assert smallest(styles).name == "thumb"
    assert smallest({}) is None


def test_form_uses_the_preview_widget():
    assert isinstance(ItemForm().fields["image"].widget, AttachmentWidget)


def test_processing_shows_the_placeholder_and_says_so():
    item = upload()
    html = ItemForm(instance=item).as_p()
    assert 'data-state="processing"' in html
    assert 'src="/static/attachments/processing.svg"' in html
    assert "Processing…" in html
    # Ready to be shown in place should the job fail.
    assert '<p class="help" data-attachment-label="failed" hidden>Processing failed' in html


def test_ready_shows_the_smallest_style(monkeypatch):
    styles = parse_styles({"thumb": "100x100>", "big": "400x400>"})  # no crop: no picker
    monkeypatch.setattr(Item._meta.get_field("image"), "styles", styles)
    item = upload()
    work()
    item.refresh_from_db()
    html = ItemForm(instance=item).as_p()
    assert f'src="{item.image.styles["thumb"].url}"' in html
    assert "Processing" not in html


def test_failed_says_the_original_is_kept():
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    work()
    item.refresh_from_db()
    html = ItemForm(instance=item).as_p()
    assert '<p class="help" data-attachment-label="failed">Processing failed' in html
    assert 'src="/static/attachments/failed.svg"' in html


def test_empty_field_has_no_preview():
    assert "attachment-preview" not in ItemForm().as_p()


def test_admin_change_form_shows_placeholder_then_thumbnail(admin_client):
    item = upload()
    page = admin_client.get(f"/admin/demo_site/item/{item.pk}/change/").content.decode()
    assert "processing.svg" in page
    assert 'type="file"' in page
    work()
    item.refresh_from_db()
    page = admin_client.get(f"/admin/demo_site/item/{item.pk}/change/").content.decode()
    # Its picture to click on: no style of Item keeps the whole frame 240px wide.
    assert f'src="{item.image.url}"' in page


def test_admin_upload_of_a_non_image_is_a_form_error(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = admin_client.post(
        "/admin/demo_site/item/add/",
        {"title": "t", "image": SimpleUploadedFile("x.jpg", b"%PDF-1.4 not an image")},
    )
    assert response.status_code == 200
    assert "not a valid image" in response.content.decode()
    assert Item.objects.count() == 0
    assert Job.objects.count() == 0


def test_inline_rows_show_their_previews_and_accept_uploads(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.testapp.models import Gallery, GalleryPhoto

    gallery = Gallery.objects.create(name="Trip")
    photo = GalleryPhoto(gallery=gallery)
    photo.image.save("a.png", ContentFile(images.png((120, 90))))
    url = f"/admin/testapp/gallery/{gallery.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert page.count('class="attachment-preview"') == 1
    assert "processing.svg" in page
    assert "attachments/attachments.js" in page

    response = admin_client.post(
        url,
        {
            "name": "Trip",
            "photos-TOTAL_FORMS": "2",
            "photos-INITIAL_FORMS": "1",
            "photos-0-id": str(photo.pk),
            "photos-0-gallery": str(gallery.pk),
            "photos-1-gallery": str(gallery.pk),
            "photos-1-image": SimpleUploadedFile("b.png", images.png((60, 60))),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert gallery.photos.count() == 2
    assert Job.objects.count() == 2
    work()
    assert all(p.image.ready for p in gallery.photos.all())
    page = admin_client.get(url).content.decode()
    # Their only style is a crop: the focal point picker shows each original.
    assert page.count("data-attachment-focus-image") == 2
    for p in gallery.photos.all():
        assert f'src="{p.image.url}"' in page


def test_a_blurred_preview_fills_the_styles_box_shrunk_into_the_forms():
    from demo_site.models import Banner

    banner = Banner(title="Lake")
    banner.image.save("lake.jpg", ContentFile(images.jpeg_with_thumbnail((1600, 1200))))
    html = AttachmentWidget().render("image", banner.image)
    img = html[html.index("<img") : html.index(">", html.index("<img"))]
    # The 16:9 hero's 1280x720 box, within 200 pixels; one style attribute, as a
    # browser would ignore a second one.
    assert ' width="200"' in img
    assert ' height="112"' in img
    assert img.count(" style=") == 1
    blurred = "filter: blur(5px); clip-path: inset(0); object-fit: cover; aspect-ratio: 200 / 112"
    assert f'style="{blurred};display:block"' in img


def test_a_ready_image_with_crops_gets_a_focal_point_picker():
    item = upload(images.jpeg((640, 480)))
    work()
    item.refresh_from_db()
    html = ItemForm(instance=item).as_p()
    # Without a style that keeps the whole frame and is large enough to click
    # on, the picture is the original...
    assert f'src="{item.image.url}"' in html
    assert '<input type="hidden" name="image-focus" value="">' in html
    assert "data-attachment-focus-marker" in html
    assert 'style="left:50.00%;top:50.00%" hidden' in html  # no focus yet
    item.image.focus = (0.25, 0.75)
    html = ItemForm(instance=item).as_p()
    assert '<input type="hidden" name="image-focus" value="0.25,0.75">' in html
    assert 'style="left:25.00%;top:75.00%">' in html


def test_the_picker_shows_the_smallest_whole_frame_style_large_enough(monkeypatch):
    declaration = {"tiny": "100x100", "mid": "300x300>", "big": "600x600>", "cut": "50x50#"}
    monkeypatch.setattr(Item._meta.get_field("image"), "styles", parse_styles(declaration))
    item = upload(images.jpeg((640, 480)))
    work()
    item.refresh_from_db()
    html = ItemForm(instance=item).as_p()
    assert f'src="{item.image.styles["mid"].url}"' in html
    assert f'src="{item.image.url}"' not in html


def test_no_picker_while_processing_nor_for_a_field_without_crops(monkeypatch):
    item = upload()
    assert "image-focus" not in ItemForm(instance=item).as_p()
    work()
    item.refresh_from_db()
    monkeypatch.setattr(Item._meta.get_field("image"), "styles", parse_styles({"t": "100x100"}))
    html = ItemForm(instance=item).as_p()
    assert "image-focus" not in html
    assert 'class="attachment-preview"' in html


def test_the_admin_stores_the_focus_its_picker_posts(admin_client):
    item = upload(images.jpeg((640, 480)))
    work()
    url = f"/admin/demo_site/item/{item.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="image-focus"' in page
    assert "attachments/focus.js" in page
    response = admin_client.post(url, {"title": "x", "image-focus": "0.1,0.9"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.image.focus == (0.1, 0.9)
    assert Job.objects.count() == 1


def test_a_posted_focal_point_is_a_value_of_the_widget_even_without_a_file():
    widget = AttachmentWidget()
    assert widget.value_omitted_from_data({}, {}, "image")
    assert not widget.value_omitted_from_data({"image-focus": "0.1,0.2"}, {}, "image")
    assert widget.value_from_datadict({}, {}, "image") is None  # no picker, no wrapper
    posted = widget.value_from_datadict({"image-focus": "0.1,0.2"}, {}, "image")
    assert (posted.upload, posted.focus) == (None, "0.1,0.2")
