"""Reprocessing after a style change: per-style state, fallback, resumption, races."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image

from attachments import plan, processing, renditions, storage
from attachments.models import Job
from attachments.reprocess import PRIORITY_DROP, Reprocess, select
from attachments.styles import parse_styles
from demo_site.models import Item
from tests import images
from tests.uploads import upload, work

pytestmark = pytest.mark.django_db(transaction=True)

FIELD = Item._meta.get_field("image")


@pytest.fixture
def restyle(monkeypatch) -> Iterator:
    """Change Item.image's styles as a deploy would: ``restyle({"thumb": "50x50", ...})``."""

    def change(declaration: dict) -> None:
        monkeypatch.setattr(FIELD, "styles", parse_styles(declaration))

    return change


def ready_items(count: int) -> list[Item]:
    items = [upload(images.jpeg((320, 240))) for _ in range(count)]
    work()
    return [Item.objects.get(pk=item.pk) for item in items]


def files(media: Path, item: Item) -> set[str]:
    directory = media / Path(item.image.name).parent
    return {path.name for path in directory.iterdir()}


def size_of(item: Item, style: str) -> tuple[int, int]:
    style_file = item.image.styles[style]
    with style_file.storage.open(style_file.name) as fp:
        return Image.open(fp).size


def reprocess(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reprocess_attachments", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_an_upload_records_what_it_made_per_style(media):
    (item,) = ready_items(1)
    state = item.image_styles
    assert state["original"] == [320, 240]
    assert state["thumb"]["size"] == [100, 75]
    assert state["thumb"]["format"] == "JPEG"
    assert state["square"]["size"] == [200, 200]
    assert FIELD.due(state) == []
    assert files(media, item) == {
        Path(item.image.name).name,
        *(Path(item.image.styles[s].name).name for s in ("thumb", "square")),
    }


def test_an_added_style_falls_back_until_it_is_made(media, restyle):
    (item,) = ready_items(1)
    square_url = item.image.styles["square"].url
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#", "big": "1000x1000"})
    item = Item.objects.get(pk=item.pk)
    assert FIELD.due(item.image_styles) == ["mid", "big"]
    # Known missing without touching storage: the nearest made style that covers it ...
    assert item.image.styles["mid"].url == square_url
    assert item.image.styles["mid"].name == ""
    # ... else the original.
    assert item.image.styles["big"].url == item.image.url

    code, out, _ = reprocess("--inline")
    assert code == 0
    assert "1 records: 1 made, 0 had nothing to do, 0 failed." in out
    item = Item.objects.get(pk=item.pk)
    assert size_of(item, "mid") == (150, 150)
    assert size_of(item, "big") == (1000, 750)
    assert item.image.styles["mid"].url != square_url


def test_fallback_original_is_configurable(restyle, monkeypatch):
    (item,) = ready_items(1)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    monkeypatch.setattr(FIELD, "fallback", "original")
    assert Item.objects.get(pk=item.pk).image.styles["mid"].url == item.image.url


def test_a_changed_style_is_served_until_its_new_file_is_stored(media, restyle, monkeypatch):
    (item,) = ready_items(1)
    old_name = item.image.styles["thumb"].name
    restyle({"thumb": "60x60>", "square": "200x200#"})
    seen = []
    real_publish = processing._publish

    def publish(field, job, made):
        # The new file is stored, the record still names (and serves) the old one.
        current = Item.objects.get(pk=item.pk)
        seen.append((current.image.styles["thumb"].name, (media / old_name).is_file()))
        assert all((media / name).is_file() for name in made.written)
        return real_publish(field, job, made)

    monkeypatch.setattr(processing, "_publish", publish)
    assert reprocess("--inline", "demo_site.item.image")[0] == 0
    assert seen == [(old_name, True)]
    item = Item.objects.get(pk=item.pk)
    assert size_of(item, "thumb") == (60, 45)
    assert item.image.styles["thumb"].name != old_name
    assert not (media / old_name).exists()  # deleted once the record named the new one
    # square was made from its current declaration: untouched.
    assert len(files(media, item)) == 3


def test_a_style_that_fails_fails_alone_and_the_exit_status_says_so(media, restyle):
    (item,) = ready_items(1)
    restyle(
        {
            "thumb": "100x100>",
            "square": "200x200#",
            "bad": {"geometry": "20x20", "format": "png", "options": {"compress_level": 99}},
            "tiny": "10x10",
        }
    )
    code, out, err = reprocess("--inline")
    assert code == 1
    assert f"demo_site.item.image#{item.pk}: Style 'bad' could not be encoded" in err
    assert "1 failed." in out
    item = Item.objects.get(pk=item.pk)
    assert size_of(item, "tiny") == (10, 8)
    assert "compress_level=99" in item.image_styles["bad"]["error"]
    assert item.image.styles["bad"].url == item.image.styles["thumb"].url  # covers 20x20
    # Failed from its current declaration: not tried again.
    assert reprocess("--inline")[0] == 0


def test_an_interrupted_run_resumes_where_it_stopped(restyle, monkeypatch):
    items = ready_items(5)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    calls = []
    real_process = processing.process

    def interrupted(job):
        calls.append(job.object_id)
        if calls == [str(item.pk) for item in items[:3]]:
            raise KeyboardInterrupt  # Ctrl-C while the third record is made
        return real_process(job)

    monkeypatch.setattr(processing, "process", interrupted)
    code, _, err = reprocess("--inline", "--batch-size", "2")
    assert code == 130
    assert "run the same command again to resume" in err
    done = [str(item.pk) for item in items[:2]]
    assert calls == [*done, str(items[2].pk)]

    calls.clear()
    code, out, _ = reprocess("--inline", "--batch-size", "2")
    assert code == 0
    assert sorted(calls) == sorted(str(item.pk) for item in items[2:])
    assert "5 records: 3 made, 2 had nothing to do, 0 failed." in out
    assert all(not FIELD.due(item.image_styles) for item in Item.objects.all())


def test_a_re_upload_during_reprocess_wins(media, restyle, monkeypatch):
    (item,) = ready_items(1)
    old_version = Path(item.image.name).parent
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    real_make = renditions.make
    written = []

    def make_then_reupload(*args, **kwargs):
        made = real_make(*args, **kwargs)
        written.extend(made.written)
        if not written[1:]:  # only while reprocessing, not for the new upload's job
            fresh = Item.objects.get(pk=item.pk)
            fresh.image.save("new.png", ContentFile(images.png((90, 60))))
        return made

    monkeypatch.setattr(renditions, "make", make_then_reupload)
    code, out, _ = reprocess("--inline")
    assert code == 0
    assert "0 made, 1 had nothing to do" in out
    assert written
    assert not any((media / name).exists() for name in written)
    work()  # the new upload's job
    item = Item.objects.get(pk=item.pk)
    assert item.image.name.endswith("/new.png")
    assert item.image_state == "ready"
    assert (size_of(item, "thumb"), size_of(item, "mid")) == ((90, 60), (150, 150))
    assert not (media / old_version).exists() or not any((media / old_version).iterdir())


def test_the_queue_takes_reprocessing_below_uploads(restyle):
    items = ready_items(3)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    busy = items[0]
    busy.image.save("b.jpg", ContentFile(images.jpeg((64, 64))))  # has its upload's job
    code, out, _ = reprocess("--ids", *(str(item.pk) for item in items[1:]))
    assert code == 0
    assert "2 records: 2 queued" in out
    jobs = Job.objects.filter(priority=FIELD.priority - PRIORITY_DROP)
    assert sorted(int(job.object_id) for job in jobs) == [items[1].pk, items[2].pk]
    # Queued already: a second run queues nothing more.
    assert "0 queued, 2 had nothing to do" in reprocess()[1]
    work()
    assert all(not FIELD.due(item.image_styles) for item in Item.objects.all())
    assert "3 records: 0 queued, 3 had nothing to do" in reprocess()[1]


def test_style_and_missing_only_select_records(restyle):
    items = ready_items(2)
    restyle({"thumb": "60x60>", "square": "200x200#", "mid": "150x150#"})
    # thumb was made from an older declaration (and is still served): missing-only
    # passes over records lacking only thumb; a selected record gets all it lacks.
    assert Reprocess(select([]), missing_only=True, styles=["thumb"], inline=True).run().done == 0
    summary = Reprocess(select([]), styles=["thumb"], ids=[str(items[0].pk)], inline=True).run()
    assert (summary.total, summary.done) == (1, 1)
    assert [FIELD.due(item.image_styles) for item in Item.objects.order_by("pk")] == [
        [],
        ["thumb", "mid"],
    ]
    summary = Reprocess(select(["demo_site.item.image"]), missing_only=True, inline=True).run()
    assert (summary.total, summary.done, summary.skipped) == (2, 1, 1)


def test_concurrent_inline_reprocess(restyle):
    ready_items(4)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    summary = Reprocess(select([]), inline=True, concurrency=3).run()
    assert (summary.total, summary.done, summary.failed) == (4, 4, 0)


def test_bad_arguments_are_command_errors():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"No attachment field 'demo_site\.item\.nope'"):
        call_command("reprocess_attachments", "demo_site.item.nope")
    with pytest.raises(CommandError, match="No style nope"):
        call_command("reprocess_attachments", "--style", "nope")


def test_a_log_gets_plain_lines(restyle, monkeypatch):
    from attachments.management.commands import reprocess_attachments

    ready_items(2)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    monkeypatch.setattr(reprocess_attachments, "LOG_EVERY", 0)
    _code, out, _ = reprocess("--inline", "--batch-size", "1")
    assert "1/2 records" in out
    assert "2/2 records" in out
    assert "\r" not in out


def check_database() -> dict[str, str]:
    from attachments.checks import check_styles_made

    return {m.id: m.msg for m in check_styles_made(databases=["default"])}


def test_check_counts_records_lacking_styles_and_reprocess_uses_exactly_that(restyle):
    ready_items(3)
    assert check_database() == {}
    restyle({"thumb": "60x60>", "square": "200x200#", "mid": "150x150#", "big": "900x900"})
    assert check_database() == {
        "attachments.W070": "Published records lack styles: mid (3), big (3).",
        "attachments.W071": "Published records have styles made from an older declaration: "
        "thumb (3).",
    }
    from attachments.checks import check_styles_made

    assert check_styles_made(databases=None) == []  # plain check: no queries
    Reprocess(select([]), missing_only=True, styles=["mid"], inline=True).run()
    assert check_database() == {}  # one run made every style the records lacked


def test_a_re_upload_replaces_a_waiting_reprocess_job(media, restyle):
    (item,) = ready_items(1)
    old_version = media / Path(item.image.name).parent
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    assert "1 queued" in reprocess()[1]
    item.image.save("new.png", ContentFile(images.png((90, 60))))
    (job,) = Job.objects.all()  # the upload's job took the reprocess job's place
    assert job.source == item.image.name
    assert job.priority == FIELD.priority
    work()
    item = Item.objects.get(pk=item.pk)
    assert FIELD.due(item.image_styles) == []
    assert size_of(item, "mid") == (150, 150)
    assert not old_version.exists() or not any(old_version.iterdir())


def test_a_reprocess_job_for_a_version_replaced_meanwhile_is_a_no_op(media, restyle):
    (item,) = ready_items(1)
    restyle({"thumb": "100x100>", "square": "200x200#", "mid": "150x150#"})
    assert "1 queued" in reprocess()[1]
    (job,) = Job.objects.all()
    # A re-upload while the job runs: claimed jobs are not replaced, so both run.
    Job.objects.filter(pk=job.pk).update(locked_by="elsewhere")
    item.image.save("new.png", ContentFile(images.png((90, 60))))
    Job.objects.filter(pk=job.pk).update(locked_by="")
    work()
    item = Item.objects.get(pk=item.pk)
    assert item.image.name.endswith("/new.png")
    assert FIELD.due(item.image_styles) == []
    assert Job.objects.count() == 0
    old = [p for p in media.rglob("*") if p.is_file() and p.stem.split("-")[0] == "a"]
    assert old == []  # nothing of the old version is left, the reprocess's files included


def test_a_responsive_styles_files_are_made_replaced_and_deleted_with_their_record(media, restyle):
    (item,) = ready_items(1)
    base = {"thumb": "100x100>", "square": "200x200#"}
    hero = {"widths": [160, 300, 640], "formats": ["webp", "jpeg"]}
    restyle({**base, "hero": hero})
    assert reprocess("--inline")[0] == 0
    item = Item.objects.get(pk=item.pk)
    entry = plan.made(item.image_styles)["hero"]
    # 640 is wider than the 320x240 original: its files are the original's width.
    assert entry.variants == tuple(
        (fmt, w, h) for w, h in ((160, 120), (300, 225), (320, 240)) for fmt in ("WEBP", "JPEG")
    )
    made = storage.made_names(item.image.name, "hero", entry)
    stem = Path(item.image.name).stem
    assert [Path(name).name for name in made[:2]] == [
        f"{stem}-hero-160w-{entry.fingerprint}.webp",
        f"{stem}-hero-160w-{entry.fingerprint}.jpg",
    ]
    assert item.image.styles["hero"].name == made[-1]  # its url: the widest, last format
    assert size_of(item, "hero") == (320, 240)
    before = files(media, item)
    assert before == {
        Path(item.image.name).name,
        *(Path(item.image.styles[s].name).name for s in base),
        *(Path(name).name for name in made),
    }

    # A changed declaration: the new files replace the old ones, which go once named no more.
    restyle({**base, "hero": {**hero, "widths": [200], "formats": ["avif", "jpeg"]}})
    assert reprocess("--inline")[0] == 0
    item = Item.objects.get(pk=item.pk)
    entry = plan.made(item.image_styles)["hero"]
    assert entry.variants == (("AVIF", 200, 150), ("JPEG", 200, 150))
    new = {Path(name).name for name in storage.made_names(item.image.name, "hero", entry)}
    assert files(media, item) == (before - {Path(name).name for name in made}) | new

    folder = media / Path(item.image.name).parent
    item.delete()
    assert not folder.exists()
