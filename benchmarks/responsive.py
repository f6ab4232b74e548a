"""Benchmark of a responsive style: every width and format from one decode, or one at a time.

    .venv/bin/python benchmarks/responsive.py [--quick] [--passes N]

The style is the issue's ``{"widths": [320, 640, 1280], "formats": ["avif",
"webp", "jpeg"], "crop": "16:9"}``: nine files per photo. Two ways to make them
from each JPEG of the corpus (see ``corpus.py``):

* ours: ``attachments.imaging.render`` of the style, as a job does it: one
  decode (DCT-scaled to what 1280 pixels need), one resize per width shared by
  its three formats;
* one at a time: ``render`` of nine one-file styles, a decode and a resize per
  file, as a pipeline that makes each rendition on its own does (Wagtail makes
  each rendition when a page first asks for it; thumbnailers make one size per
  call), with our own decoder and encoders, so only the sharing differs.

Pinned to one core, CPU time (``process_time``) per pass over the photos, a
warm-up pass first, the median of ``--passes`` passes (default 3). The files
of both ways are checked to have the same sizes. Prints the time per photo of
each way, the ratio, and PASS or MISS for the goal: sharing the decode and the
resizes saves at least 10% of the one-at-a-time time (the encoders, AVIF
above all, cost the same either way, so the saving is the decodes'
and resizes' share).
"""

from __future__ import annotations

import _script  # noqa: F401  first of all: it fixes sys.path

# isort: split
import argparse
import io
import os
import statistics
import time
from collections.abc import Callable

from attachments import imaging
from attachments.styles import Style, parse_styles
from benchmarks import corpus

HERO = {"widths": [320, 640, 1280], "formats": ["avif", "webp", "jpeg"], "crop": "16:9"}
GOAL = 0.90  # ours at most this share of one-at-a-time's time


def ours(data: bytes) -> list[tuple[int, int]]:
    hero = parse_styles({"hero": HERO})["hero"]
    return _sizes(imaging.render(io.BytesIO(data), [hero], max_pixels=10**9))


def one_at_a_time(data: bytes) -> list[tuple[int, int]]:
    sizes = []
    for style in _single_styles():
        sizes += _sizes(imaging.render(io.BytesIO(data), [style], max_pixels=10**9))
    return sizes


def _single_styles() -> list[Style]:
    return [
        parse_styles({"v": {**HERO, "widths": [width], "formats": [fmt]}})["v"]
        for width in HERO["widths"]
        for fmt in HERO["formats"]
    ]


def _sizes(rendered: imaging.Rendered) -> list[tuple[int, int]]:
    return sorted((r.width, r.height) for r in rendered.values())


def timed(method: Callable[[bytes], list[tuple[int, int]]], photos, passes: int) -> float:
    """Median CPU seconds of one pass over ``photos``, after a warm-up pass."""
    for photo in photos:
        method(photo.data)
    times = []
    for _ in range(passes):
        start = time.process_time()
        for photo in photos:
            method(photo.data)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 photos, 1 pass")
    parser.add_argument("--passes", type=int, default=3)
    options = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    photos = corpus.load(limit=3 if options.quick else 8, formats=("JPEG",))
    passes = 1 if options.quick else options.passes
    print(f"corpus: {photos.describe()}")
    print(f"style: {HERO} (9 files per photo); one core, median of {passes} passes")
    for photo in photos.photos:
        assert ours(photo.data) == sorted(one_at_a_time(photo.data)), photo.name
    count = len(photos.photos)
    shared = timed(ours, photos.photos, passes)
    single = timed(one_at_a_time, photos.photos, passes)
    print(f"ours, one decode:      {1000 * shared / count:8.0f} ms per photo")
    print(f"one file at a time:    {1000 * single / count:8.0f} ms per photo")
    ratio = shared / single
    verdict = "PASS" if ratio <= GOAL else "MISS"
    print(f"ours / one at a time:  {ratio:8.2f}  (goal <= {GOAL}: {verdict})")


if __name__ == "__main__":
    main()
