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


HERO = {"widths": [320, 640, 1280], "formats": ["avif", "webp", "jpeg"], "crop": "16:9"}


def sizes(outputs):
    return [(o.key, o.size, o.format) for o in outputs.values()]


def test_a_responsive_style_is_one_output_per_width_and_format_width_by_width():
    hero = style(HERO, name="hero")
    qualities = {**Q, "AVIF": 60}
    outputs = plan.outputs([hero], (2000, 1500), "JPEG", qualities)
    assert sizes(outputs) == [
        ("hero-320w.avif", (320, 180), "AVIF"),
        ("hero-320w.webp", (320, 180), "WEBP"),
        ("hero-320w.jpg", (320, 180), "JPEG"),
        ("hero-640w.avif", (640, 360), "AVIF"),
        ("hero-640w.webp", (640, 360), "WEBP"),
        ("hero-640w.jpg", (640, 360), "JPEG"),
        ("hero-1280w.avif", (1280, 720), "AVIF"),
        ("hero-1280w.webp", (1280, 720), "WEBP"),
        ("hero-1280w.jpg", (1280, 720), "JPEG"),
    ]
    assert {o.quality for o in outputs.values()} == {60, 80, 85}
    assert {o.fingerprint for o in outputs.values()} == {plan.fingerprint(hero, qualities)}
    assert {o.width for o in outputs.values()} == {320, 640, 1280}


@pytest.mark.parametrize(
    ("spec", "size", "widths"),
    [
        # Wider than the original: one file at the original's width, never enlarged.
        ({"widths": [320, 640, 1280]}, (800, 600), [(320, 240), (640, 480), (800, 600)]),
        ({"widths": [320, 640]}, (640, 480), [(320, 240), (640, 480)]),
        ({"widths": [320, 640]}, (200, 100), [(200, 100)]),
        # Cropped: no wider than the widest 16:9 the original holds (1000x562 of 1000x600).
        (HERO, (1000, 600), [(320, 180), (640, 360), (1000, 562)]),
        # 400 wide: its width limits it; 300x100: its height (177x100).
        (HERO, (400, 300), [(320, 180), (400, 225)]),
        (HERO, (300, 100), [(177, 100)]),
        ({"widths": [100], "crop": "1:1"}, (50, 80), [(50, 50)]),
    ],
)
def test_a_responsive_style_never_enlarges_the_original(spec, size, widths):
    made = plan.variants(style(spec), size)
    assert [p.size for _, p in made] == widths
    assert [w for w, _ in made] == [w for w, _ in widths]
    for _, geometry in made:
        assert all(side <= limit for side, limit in zip(geometry.resize, size, strict=True))


def test_a_responsive_styles_fingerprint_follows_its_declaration():
    base = plan.fingerprint(style(HERO), Q)
    changed = [
        {**HERO, "widths": [320, 640]},
        {**HERO, "formats": ["webp", "jpeg"]},
        {**HERO, "formats": ["jpeg", "webp", "avif"]},  # the order is the preference
        {**HERO, "crop": "4:3"},
        {**HERO, "crop": "16:9#north"},
        {k: v for k, v in HERO.items() if k != "crop"},
        {**HERO, "quality": 50},
    ]
    assert len({base, *(plan.fingerprint(style(s), Q) for s in changed)}) == 8
    assert plan.fingerprint(style({**HERO, "widths": [1280, 640, 320]}), Q) == base
    # The default qualities count for the formats it writes.
    assert plan.fingerprint(style(HERO), {**Q, "AVIF": 50}) != base


def test_a_responsive_styles_state_lists_its_files_and_gives_its_fallback():
    hero = style(HERO, name="hero")
    variants = [(fmt, w, h) for w, h in ((320, 180), (640, 360)) for fmt in ("AVIF", "JPEG")]
    entry = plan.Made.of_variants(plan.fingerprint(hero, Q), variants)
    assert (entry.format, entry.width, entry.height) == ("JPEG", 640, 360)  # widest, last format
    state = {"original": [700, 400], "hero": entry.to_json()}
    assert state["hero"]["variants"][0] == ["AVIF", 320, 180]
    assert plan.made(state)["hero"] == entry
    assert entry.sources() == {"AVIF": [(320, 180), (640, 360)], "JPEG": [(320, 180), (640, 360)]}
    assert plan.due([hero], state, Q) == []
    assert plan.planned_size(hero, state) == (640, 360)
    # Not made yet: its widest file's size, from the original's.
    assert plan.planned_size(hero, {"original": [700, 400]}) == (700, 394)
    assert plan.planned_size(hero, {}) is None
    # An ordinary style's entry is as it was.
    assert "variants" not in made("10x10")


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
    # The focus is no style, and none can be called so (its key is no identifier),
    # while a style may be called "focus".
    assert set(plan.made(made_there)) == set(styles)
    with pytest.raises(Exception, match="@focus"):
        parse_styles({plan.FOCUS: "10x10"})
    assert list(parse_styles({"focus": "10x10"})) == ["focus"]


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


def test_a_cropped_responsive_style_keeps_the_focus_in_frame_of_every_width():
    hero = style({"widths": [100, 200], "crop": "1:1"}, name="hero")
    north = style({"widths": [100, 200], "crop": "1:1#north"}, name="north")
    assert plan.follows_focus(hero)
    assert not plan.follows_focus(north)
    centred = plan.outputs([hero, north], (400, 200), "PNG", Q)
    focused = plan.outputs([hero, north], (400, 200), "PNG", Q, (1.0, 0.5))

    def left_edges(outputs, name):  # where each crop starts, as a fraction of its resize
        return [
            o.geometry.crop[0] / o.geometry.resize[0] for o in outputs.values() if o.style == name
        ]

    assert left_edges(centred, "hero") == [0.25, 0.25]
    assert left_edges(focused, "hero") == [0.5, 0.5]  # the right half: as far as it goes
    assert {o.fingerprint for o in focused.values() if o.style == "hero"} == {
        plan.fingerprint(hero, Q, (1.0, 0.5))
    }
    assert plan.fingerprint(hero, Q, (1.0, 0.5)) != plan.fingerprint(hero, Q)
    assert [o for o in focused.values() if o.style == "north"] == [
        o for o in centred.values() if o.style == "north"
    ]
