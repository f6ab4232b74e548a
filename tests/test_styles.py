from __future__ import annotations

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
