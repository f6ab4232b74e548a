from __future__ import annotations

import pytest
from django.db import models
from django.test.utils import isolate_apps

from attachments import AttachmentField, targets
from attachments.exceptions import ConfigurationError
from demo_site.models import Item
from tests.testapp.models import Photo


def test_resolve_finds_a_field_by_its_id():
    assert targets.resolve("demo_site.item.image") is Item._meta.get_field("image")
    assert targets.resolve("testapp.photo.image") is Photo._meta.get_field("image")


@pytest.mark.parametrize("target", ["demo_site.item.title", "nope", "demo_site.gone.image"])
def test_resolve_names_what_exists_when_it_cannot(target):
    with pytest.raises(ConfigurationError, match=r"demo_site\.item\.image"):
        targets.resolve(target)


def test_fields_are_those_of_installed_models_only():
    assert "demo_site.item.image" in [field.field_id for field in targets.fields()]
    with isolate_apps("tests.testapp"):

        class Elsewhere(models.Model):
            image = AttachmentField()

            class Meta:
                app_label = "testapp"

    assert "testapp.elsewhere.image" not in [field.field_id for field in targets.fields()]
