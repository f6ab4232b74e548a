from __future__ import annotations

import pytest

from attachments import plan
from attachments.styles import parse_styles

Q = {"JPEG": 85, "WEBP": 80}


def style(spec, name="s"):
    return parse_styles({name: spec})[name]


def test_a_fingerprint_follows_the_declaration_not_the_name():
    base = plan.fingerprint(style("100x100>"), Q)
    assert plan.fingerprint(style("100x100>", name="other"), Q) == base
    assert plan.fingerprint(style("100x100>"), dict(Q)) == base
    changed = [
        style("100x100"),
        style(("100x100>", "png")),
        style({"geometry": "100x100>", "quality": 50}),
        style({"geometry": "100x100>", "options": {"optimize": True}}),
    ]
    assert len({base, *(plan.fingerprint(s, Q) for s in changed)}) == 5


def test_default_qualities_count_only_for_the_formats_a_style_writes():
    png = style(("10x10", "png"))
    assert plan.fingerprint(png, Q) == plan.fingerprint(png, {"JPEG": 10, "WEBP": 10})
    webp = style(("10x10", "webp"))
    assert plan.fingerprint(webp, Q) != plan.fingerprint(webp, {**Q, "WEBP": 90})
    assert plan.fingerprint(webp, Q) == plan.fingerprint(webp, {**Q, "JPEG": 90})
    own = style({"geometry": "10x10", "quality": 60})
    assert plan.fingerprint(own, Q) == plan.fingerprint(own, {"JPEG": 1, "WEBP": 1})


def test_outputs_carry_size_format_quality_and_options():
    styles = parse_styles(
        {
            "thumb": "100x100>",
            "wide": ("300x100#", "png"),
            "hero": {"geometry": "50%", "format": "webp", "options": {"lossless": True}},
        }
    )
    outputs = plan.outputs(styles.values(), (640, 480), "TIFF", Q)
    thumb, wide, hero = outputs["thumb"], outputs["wide"], outputs["hero"]
    assert (thumb.size, thumb.format, thumb.quality, thumb.extension) == (
        (100, 75),
        "PNG",
        None,
        ".png",
    )
    assert (wide.size, wide.format, wide.geometry.crop is not None) == ((300, 100), "PNG", True)
    assert (hero.size, hero.format, hero.quality, hero.options) == (
        (320, 240),
        "WEBP",
        80,
        (("lossless", True),),
    )
    assert thumb.fingerprint == plan.fingerprint(styles["thumb"], Q)
    jpeg = plan.outputs([styles["thumb"]], (640, 480), "JPEG", Q)["thumb"]
    assert (jpeg.format, jpeg.quality) == ("JPEG", 85)


def made(spec, size=(10, 10), fmt="JPEG", **extra):
    return plan.Made(plan.fingerprint(style(spec), Q), fmt, *size, **extra).to_json()


def test_due_compares_fingerprints_without_touching_files():
    styles = parse_styles({"a": "10x10", "b": "20x20", "c": "30x30"})
    state = {"original": [100, 100], "a": made("10x10"), "b": made("25x25")}
    assert plan.due(styles.values(), state, Q) == ["b", "c"]
    # b has a file from its older declaration, served until it is made again.
    assert plan.due(styles.values(), state, Q, missing_only=True) == ["c"]
    assert plan.due(styles.values(), {}, Q) == ["a", "b", "c"]
    assert plan.due(styles.values(), None, Q) == ["a", "b", "c"]


def test_a_style_that_failed_from_its_declaration_is_not_due_again():
    styles = parse_styles({"a": "10x10"})
    failed = {"a": plan.Made(plan.fingerprint(styles["a"], Q), error="no").to_json()}
    assert plan.due(styles.values(), failed, Q) == []
    assert not plan.made(failed)["a"].ok
    older = {"a": plan.Made("0" * 12, error="no").to_json()}
    assert plan.due(styles.values(), older, Q, missing_only=True) == ["a"]


def test_unreadable_state_entries_are_ignored():
    assert plan.made({"a": "x", "b": {"nofp": 1}, "original": [1, 2]}) == {}
    assert plan.original_size({"original": "x"}) is None
    assert plan.original_size({"original": [3, 4]}) == (3, 4)


def test_planned_size_from_the_entry_the_geometry_or_the_original():
    fixed, fit = style("64x64#"), style("100x100>")
    assert plan.planned_size(fixed, {}) == (64, 64)
    assert plan.planned_size(fit, {}) is None
    assert plan.planned_size(fit, {"original": [400, 200]}) == (100, 50)
    state = {"original": [400, 200], "s": made("90x90", size=(90, 45))}
    assert plan.planned_size(fit, state) == (90, 45)  # made from an older declaration


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [("50x50", "medium"), ("80x80", "large"), ("300x300", None), ("10x10", "small")],
)
def test_stand_in_is_the_smallest_made_style_that_covers(wanted, expected):
    styles = parse_styles({"small": "20x20", "medium": "60x60", "large": "100x100", "w": wanted})
    state = {
        "original": [400, 400],
        "small": made("20x20", size=(20, 20)),
        "medium": made("60x60", size=(60, 60)),
        "large": made("100x100", size=(100, 100)),
        "gone": made("200x200", size=(200, 200)),
    }
    assert plan.stand_in(styles["w"], styles, state) == expected


def test_no_stand_in_without_a_size():
    styles = parse_styles({"a": "10x10", "w": "50x50"})
    assert plan.stand_in(styles["w"], styles, {"a": made("10x10", size=(100, 100))}) is None


def test_processors_count_in_the_fingerprint_by_name():
    base = plan.fingerprint(style("100x100>"), Q)
    # Styles without processors keep the fingerprints they had before processors existed,
    # or upgrading would make every style of every record due again.
    assert base == "353ec75f7568"
    grey = style({"geometry": "100x100>", "processors": ["attachments.processors.grayscale"]})
    both = style(
        {
            "geometry": "100x100>",
            "processors": ["attachments.processors.grayscale", "attachments.processors.sharpen"],
        }
    )
    swapped = style(
        {
            "geometry": "100x100>",
            "processors": ["attachments.processors.sharpen", "attachments.processors.grayscale"],
        }
    )
    fingerprints = {plan.fingerprint(s, Q) for s in (grey, both, swapped)}
    assert len({base, *fingerprints}) == 4
    assert plan.due([grey], {"s": {"fp": base, "format": "JPEG", "size": [1, 1]}}, Q) == ["s"]
    output = plan.outputs([both], (10, 10), "JPEG", Q)["s"]
    assert [p.name for p in output.processors] == [p.name for p in both.processors]


def test_animated_counts_in_the_fingerprint_and_only_for_formats_that_animate():
    still, moving = style("10x10"), style({"geometry": "10x10", "animated": True})
    assert plan.fingerprint(still, Q) != plan.fingerprint(moving, Q)
    assert plan.outputs([moving], (20, 20), "GIF", Q)["s"].animated
    assert not plan.outputs([moving], (20, 20), "JPEG", Q)["s"].animated


def test_the_avif_default_quality_counts_only_for_avif_styles():
    with_avif = {**Q, "AVIF": 60}
    # Styles that keep the original's format never write AVIF: their fingerprints
    # stay as they were before AVIF existed.
    assert plan.fingerprint(style("100x100>"), with_avif) == "353ec75f7568"
    avif = style(("10x10", "avif"))
    assert plan.fingerprint(avif, with_avif) != plan.fingerprint(avif, {**with_avif, "AVIF": 70})
    assert plan.outputs([avif], (20, 20), "JPEG", with_avif)["s"].quality == 60
    assert plan.outputs([style("10x10")], (20, 20), "AVIF", with_avif)["s"].format == "PNG"


@pytest.mark.parametrize(
    ("spec", "follows"),
    [
        ("200x200#", True),
        ("200x100#", True),
        ("200x200#north", False),  # the style's own gravity wins
        ("200x200#center", False),
        ("200x200#0.3,0.7", False),
        ("200x200>", False),
        ("200x200^", False),
        ("200x200!", False),
        ("50%", False),
    ],
)
def test_only_crops_without_a_gravity_of_their_own_follow_the_focus(spec, follows):
    assert plan.follows_focus(style(spec)) is follows


def test_the_focus_is_in_the_fingerprint_of_the_styles_that_follow_it_only():
    crop, fit, north = style("200x200#"), style("100x100>"), style("200x200#north")
    for each in (crop, fit, north):
        # No focus: the fingerprints records made before focal points existed.
        assert plan.fingerprint(each, Q, None) == plan.fingerprint(each, Q)
    assert plan.fingerprint(crop, Q, (0.3, 0.7)) != plan.fingerprint(crop, Q)
    assert plan.fingerprint(crop, Q, (0.3, 0.7)) != plan.fingerprint(crop, Q, (0.3, 0.6))
    assert plan.fingerprint(crop, Q, (0.3, 0.7)) == plan.fingerprint(crop, Q, (0.30001, 0.7))
    assert plan.fingerprint(fit, Q, (0.3, 0.7)) == plan.fingerprint(fit, Q)
    assert plan.fingerprint(north, Q, (0.3, 0.7)) == plan.fingerprint(north, Q)


def made_state(styles, focus=None):
    state = {plan.ORIGINAL: [400, 200]}
    for s in styles.values():
        state[s.name] = {"fp": plan.fingerprint(s, Q, focus), "format": "PNG", "size": [1, 1]}
    if focus is not None:
        state[plan.FOCUS] = list(focus)
    return state


def test_moving_the_focus_makes_exactly_the_styles_that_follow_it_due():
    styles = parse_styles(
        {"thumb": "100x100>", "square": "200x200#", "banner": "300x50#north", "tall": "50x90#"}
    )
    state = made_state(styles)
    assert plan.due(styles.values(), state, Q) == []
    moved = {**state, plan.FOCUS: [0.2, 0.8]}
    assert plan.due(styles.values(), moved, Q) == ["square", "tall"]
    made_there = made_state(styles, (0.2, 0.8))
    assert plan.due(styles.values(), made_there, Q) == []
    unset = {k: v for k, v in made_there.items() if k != plan.FOCUS}
    assert plan.due(styles.values(), unset, Q) == ["square", "tall"]
    # The focus is no style, and none can be called so.
    assert set(plan.made(made_there)) == set(styles)
    with pytest.raises(Exception, match="focus"):
        parse_styles({"focus": "10x10"})


def test_outputs_keep_the_focus_in_frame_of_the_styles_that_follow_it():
    styles = parse_styles({"square": "200x200#", "west": "200x200#west", "fit": "100x100"})
    centred = plan.outputs(styles.values(), (400, 200), "PNG", Q)
    focused = plan.outputs(styles.values(), (400, 200), "PNG", Q, (0.9, 0.5))
    assert centred["square"].geometry.crop == (100, 0, 300, 200)
    assert focused["square"].geometry.crop == (200, 0, 400, 200)
    assert focused["square"].fingerprint == plan.fingerprint(styles["square"], Q, (0.9, 0.5))
    assert focused["west"] == centred["west"]
    assert focused["west"].geometry.crop == (0, 0, 200, 200)
    assert focused["fit"] == centred["fit"]


@pytest.mark.parametrize(
    ("state", "focus"),
    [
        ({plan.FOCUS: [0.25, 1]}, (0.25, 1.0)),
        ({plan.FOCUS: [0, 0]}, (0.0, 0.0)),
        ({}, None),
        ({plan.FOCUS: [1.5, 0.5]}, None),  # not ours: ignored, not a crash
        ({plan.FOCUS: "0.3,0.7"}, None),
        ({plan.FOCUS: [True, 0.5]}, None),
        ({plan.FOCUS: [0.5]}, None),
        (None, None),
    ],
)
def test_the_focus_is_read_from_a_record_state(state, focus):
    assert plan.focus(state) == focus


@pytest.mark.parametrize(
    ("value", "point"),
    [
        ((0.3, 0.7), (0.3, 0.7)),
        ([1, 0], (1.0, 0.0)),
        (("0.123456", "0.5"), (0.1235, 0.5)),
        (None, None),
    ],
)
def test_a_focus_is_two_fractions_rounded_below_a_pixel(value, point):
    assert plan.to_focus(value) == point


@pytest.mark.parametrize("value", [(1.2, 0.5), (-0.1, 0), (float("nan"), 0.5), (0.5,), "x", 3])
def test_anything_else_is_no_focus(value):
    with pytest.raises(ValueError, match="focal point"):
        plan.to_focus(value)
