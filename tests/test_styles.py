from __future__ import annotations

import dataclasses

import pytest

from attachments.styles import Style, StyleError, format_for_extension, parse_styles


def test_three_declaration_forms():
    styles = parse_styles(
        {
            "thumb": "100x100>",
            "square": ("200x200#", "png"),
            "hero": {"geometry": "1200x", "format": "WebP", "quality": 80},
        }
    )
    assert [s.name for s in styles.values()] == ["thumb", "square", "hero"]
    assert str(styles["thumb"].geometry) == "100x100>"
    assert (styles["thumb"].format, styles["thumb"].quality) == (None, None)
    assert styles["square"].format == "PNG"
    assert (styles["hero"].format, styles["hero"].quality) == ("WEBP", 80)


def test_none_means_no_styles():
    assert parse_styles(None) == {}


@pytest.mark.parametrize(
    ("styles", "message"),
    [
        ({"thumb": "100xx"}, "'thumb'"),
        ({"thumb": 100}, "expected"),
        ({"thumb": ("100x100", "bmp")}, "format"),
        ({"thumb": {"geometry": "1x1", "quality": 0}}, "quality"),
        ({"thumb": {"geometry": "1x1", "quality": True}}, "quality"),
        ({"thumb": {"geometry": "1x1", "size": 3}}, "unknown option"),
        ({"thumb": {"format": "png"}}, "geometry"),
        ({"bad name": "1x1"}, "identifier"),
        ({"original": "1x1"}, "original"),
        (["thumb"], "dict"),
    ],
)
def test_bad_declarations_name_the_problem(styles, message):
    with pytest.raises(StyleError, match=message):
        parse_styles(styles)


@pytest.mark.parametrize(
    ("style_format", "source", "expected"),
    [
        (None, "JPEG", "JPEG"),
        (None, "PNG", "PNG"),
        (None, "GIF", "GIF"),
        (None, "WEBP", "WEBP"),
        (None, "TIFF", "PNG"),
        ("WEBP", "JPEG", "WEBP"),
    ],
)
def test_output_format_keeps_the_original_unless_told(style_format, source, expected):
    style = Style("s", parse_styles({"s": "1x1"})["s"].geometry, format=style_format)
    assert style.output_format(source) == expected


def test_format_for_extension():
    assert format_for_extension(".JPEG") == "JPEG"
    assert format_for_extension(".jpg") == "JPEG"
    assert format_for_extension(".webp") == "WEBP"
    assert format_for_extension(".exe") == ""


def test_processors_are_callables_or_dotted_paths_imported_when_used():
    def mark(image):
        return image

    style = parse_styles(
        {"s": {"geometry": "1x1", "processors": ["attachments.processors.sharpen", mark]}}
    )["s"]
    path, given = style.processors
    assert path.name == "attachments.processors.sharpen"
    assert path.function is None
    from attachments import processors

    assert path.resolve() is processors.sharpen
    assert given.resolve() is mark
    assert given.name.endswith(
        "test_processors_are_callables_or_dotted_paths_imported_when_used.<locals>.mark"
    )
    one = parse_styles({"s": {"geometry": "1x1", "processors": "attachments.processors.sharpen"}})
    assert one["s"].processors == (path,)


@dataclasses.dataclass
class Watermark:
    opacity: float

    def __call__(self, image):
        return image


class Plain:
    def __call__(self, image):
        return image


def test_a_callable_objects_name_has_its_parameters_never_an_address():
    def name(processor):
        return (
            parse_styles({"s": {"geometry": "1x1", "processors": [processor]}})["s"]
            .processors[0]
            .name
        )

    assert name(Watermark(0.3)) == "tests.test_styles.Watermark(opacity=0.3)"
    assert name(Watermark(0.3)) != name(Watermark(0.5))
    assert name(Plain()) == name(Plain()) == "tests.test_styles.Plain"


@pytest.mark.parametrize("processors", [["grayscale"], ["a..b"], [3], {"a.b": 1}, "not a path"])
def test_bad_processor_declarations_are_style_errors(processors):
    with pytest.raises(StyleError, match="processors must be callables or dotted paths"):
        parse_styles({"s": {"geometry": "1x1", "processors": processors}})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("attachments.processors.nothing", "cannot be imported"),
        ("no_such_module.grayscale", "cannot be imported"),
        ("attachments.processors.__all__", "is not callable"),
    ],
)
def test_a_processor_that_does_not_import_says_so_when_resolved(path, message):
    style = parse_styles({"s": {"geometry": "1x1", "processors": [path]}})["s"]
    with pytest.raises(StyleError, match=message):
        style.processors[0].resolve()


def test_animated_styles_write_gif_or_webp():
    styles = parse_styles(
        {
            "a": {"geometry": "1x1", "animated": True},
            "b": {"geometry": "1x1", "format": "webp", "animated": True},
        }
    )
    assert styles["a"].animated
    assert styles["b"].animated
    assert not parse_styles({"c": "1x1"})["c"].animated
    with pytest.raises(StyleError, match="animated style's format must be gif or webp"):
        parse_styles({"s": {"geometry": "1x1", "format": "png", "animated": True}})
    with pytest.raises(StyleError, match="'animated' must be True or False"):
        parse_styles({"s": {"geometry": "1x1", "animated": "yes"}})


def test_a_responsive_style_declares_widths_formats_and_an_aspect_crop():
    hero = parse_styles(
        {"hero": {"widths": [1280, 320, 640], "formats": ["avif", "WebP", "jpg"], "crop": "16:9"}}
    )["hero"]
    assert hero.responsive
    assert (hero.widths, hero.formats, hero.crop, hero.gravity) == (
        (320, 640, 1280),
        ("AVIF", "WEBP", "JPEG"),
        (16, 9),
        "",
    )
    assert str(hero.geometry) == "1280x720#"  # its widest file's, its url's
    assert str(hero.width_geometry(320)) == "320x180#"
    assert hero.fixed_size is None  # narrower when the original is
    north = parse_styles({"n": {"widths": [100], "crop": "1:1#north"}})["n"]
    assert str(north.width_geometry(50)) == "50x50#north"
    plain = parse_styles({"p": {"widths": [100, 200]}})["p"]
    assert (plain.formats, plain.crop, str(plain.width_geometry(100))) == ((), None, "100")
    assert not parse_styles({"t": "10x10"})["t"].responsive


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"widths": []}, "'widths' must be a list of distinct positive integers"),
        ({"widths": [320, 320]}, "distinct"),
        ({"widths": [0]}, "positive"),
        ({"widths": [True]}, "positive"),
        ({"widths": "320"}, "'widths' must be a list"),
        ({"widths": [320], "formats": "avif"}, "'formats' must be a list"),
        ({"widths": [320], "formats": ["avif", "bmp"]}, "format 'bmp'"),
        ({"widths": [320], "formats": ["jpg", "jpeg"]}, "names a format twice"),
        ({"widths": [320], "crop": "16x9"}, "'crop' must be an aspect ratio"),
        ({"widths": [320], "crop": "0:9"}, "'crop' must be an aspect ratio"),
        ({"widths": [320], "crop": "16:9#up"}, "unknown gravity 'up'"),
        ({"widths": [320], "geometry": "320x"}, "not ['geometry']"),
        ({"widths": [320], "format": "png"}, "not ['format']"),
        ({"widths": [320], "animated": True}, "not ['animated']"),
        ({"geometry": "1x1", "formats": ["avif"]}, "'formats' and 'crop' go with 'widths'"),
        ({"geometry": "1x1", "crop": "1:1"}, "'formats' and 'crop' go with 'widths'"),
        ({"widths": [10**12]}, "'hero'"),
    ],
)
def test_a_bad_responsive_declaration_names_the_style(spec, message):
    with pytest.raises(StyleError, match=r"^Style 'hero': ") as error:
        parse_styles({"hero": spec})
    assert message in str(error.value)
