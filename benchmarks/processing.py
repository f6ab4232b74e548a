"""Benchmark of thumbnailing per core: our imaging path against its peers.

    .venv/bin/python benchmarks/processing.py [--quick] [--passes N]
    .venv/bin/python benchmarks/processing.py --draft-gaps [--quick]

Every method makes the two styles of the issue, ``thumb`` (``100x100>``) and
``square`` (``200x200#``), of every image in the corpus (see ``corpus.py``) and
encodes them (JPEG quality 85 progressive from a JPEG, PNG from a PNG):

* ours: ``attachments.imaging.render``;
* naive Pillow: full decode, EXIF transpose, LANCZOS per style, save both; what
  sorl-thumbnail, easy-thumbnails and django-imagekit do, standing in for them;
* the Django peers themselves, when installed (``.[bench]``), each through the
  code its template tag or spec runs, less its storage and cache: imagekit's
  pilkit pipeline (``Transpose``, ``ResizeToFit``/``ResizeToFill``,
  ``save_image``), easy-thumbnails' engine (source generators, its default
  processors, ``save_pil_image``), sorl-thumbnail's PIL engine (``create`` and
  the bytes its ``write`` stores), all at JPEG quality 85 or PNG;
* Paperclip: the ImageMagick commands Paperclip's Thumbnail processor runs,
  two processes per style: ``identify -format '%wx%h,%[exif:orientation]'``
  (its ``Geometry.from_file``, run for every style; without ``-ping`` it
  decodes the whole image) and ``convert`` (``-auto-orient -resize
  "100x100>"``; ``-resize "200x" -crop "200x200+X+Y" +repage`` with
  Paperclip's own offsets). Both are timed apart, and the ``convert`` alone is
  reported too, as the stricter baseline;
* ImageMagick in one process, both styles, with a ``jpeg:size`` hint;
* pyvips ``thumbnail`` per style (shrink-on-load), when pyvips is importable
  (``pip install -e '.[bench]'`` brings it with its own libvips);
* modern formats: both styles written as AVIF and as WebP, by us and by pyvips
  (issue 16), at equal settings: quality ``AVIF_QUALITY``/``WEBP_QUALITY`` is
  libvips' ``Q`` (both libraries hand it to the codec as is: libavif and
  libheif map 0-100 to AV1's quantiser with the same formula, libwebp takes it
  directly); WebP ``method`` 0-6 is libvips' ``effort`` 0-6 (libvips passes it
  as libwebp's method); AVIF ``speed`` s (libavif, 0-10) is libvips'
  ``effort`` 9 - s (libvips sets libheif's aom speed to 9 - effort); both AV1
  encoders are libaom, both 4:2:0;
* the decode floor: Pillow decoding alone, JPEG at the DCT scale the largest
  resize needs (``draft``, at least 1x), PNG in full; and, for reference, JPEG at
  the scale we decode at (at least 2x: see ``_DRAFT_GAP`` in imaging/decoding.py).

All of it pinned to one core (``os.sched_setaffinity``), ImageMagick and libvips
told to use one thread; CPU time (``process_time`` plus children's) per pass over
the corpus, a warm-up pass first, the median of ``--passes`` passes (default 5;
ImageMagick, being slow, 2 for Paperclip's commands and 1 for the one-process
variant, without warm-up: each command is a fresh process anyway; "decode at our
scale" 3). Every output's size is checked against ``Geometry.plan`` and its
quality measured against a full-size decode and LANCZOS (PSNR over RGB
composited on white). Then the peak RSS of rendering the largest
image in a fresh process, and whether two threads render twice as fast as one
(Pillow releasing the GIL). Optional tools that are missing are named, not fatal.

``--draft-gaps`` shows instead why ``imaging.render`` decodes a JPEG at twice
the size its largest style needs (``_DRAFT_GAP``): for each gap, its CPU time
over the JPEG photos against the decode floor's, and its styles' pixels, made
lossless (PNG), against a full-size decode and LANCZOS (PSNR, mean and worst).
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import os
import sys

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # before pyvips loads libvips

import argparse
import io
import math
import resource
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops, ImageOps, ImageStat, features

from attachments import imaging
from attachments.conf import DEFAULTS
from attachments.imaging import decoding, encoding
from attachments.styles import parse_styles
from benchmarks import corpus as corpus_module
from benchmarks.corpus import Photo

try:
    import pyvips  # type: ignore[import-not-found]
except (ImportError, OSError):  # OSError: pyvips without libvips
    pyvips = None

STYLES = parse_styles({"thumb": "100x100>", "square": "200x200#"})
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85
CONVERT = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in, not ImageMagick
IDENTIFY = "/usr/bin/identify"
PAPERCLIP = "Paperclip (identify + convert)"
MAGICK_ENV = {**os.environ, "MAGICK_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1"}

# Targets of the issue, as ratios of images/s measured in the same run.
TARGETS = {
    "pyvips": 1.8,
    "Django peer": 3.0,
    "Paperclip": 10.0,
    "decode floor": 0.8,
    **dict.fromkeys(("django-imagekit", "easy-thumbnails", "sorl-thumbnail"), 3.0),
    "pyvips, AVIF": 1.0,
    "pyvips, WebP": 1.0,
}
# Modern formats at equal settings (see the docstring): ours, and libvips' spelling.
AVIF_QUALITY, WEBP_QUALITY = DEFAULTS["AVIF_QUALITY"], DEFAULTS["WEBP_QUALITY"]
MODERN = {
    "AVIF": {"Q": AVIF_QUALITY, "effort": 9 - encoding._AVIF_SPEED, "compression": "av1"},
    "WEBP": {"Q": WEBP_QUALITY, "effort": encoding._WEBP_METHOD},
}
MAX_RSS_MB = 150

Outputs = list[tuple[str, bytes]]  # (style name, encoded file)


@dataclass
class Method:
    name: str
    run: Callable[[Photo], Outputs]
    passes: int
    note: str = ""
    warm_up: bool = True  # ImageMagick runs in fresh processes: nothing to warm but files
    times: dict[str, list[float]] = field(default_factory=dict)  # format -> CPU s per pass
    outputs: dict[Path, Outputs] = field(default_factory=dict)  # from the warm-up pass

    def rate(self, photos: list[Photo], fmt: str | None = None) -> float:
        chosen = [p for p in photos if fmt is None or p.format == fmt]
        formats = {p.format for p in chosen}
        passes = zip(*(self.times[f] for f in formats), strict=True)
        seconds = statistics.median(sum(per_format) for per_format in passes)
        return len(chosen) / seconds if seconds else math.inf


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu() -> float:
    """CPU seconds used by this process and its waited-for children (os.times() ticks 10 ms)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def plans(photo: Photo) -> dict[str, tuple]:
    info = imaging.probe(io.BytesIO(photo.data), max_pixels=MAX_PIXELS)
    return {name: style.geometry.plan(info.width, info.height) for name, style in STYLES.items()}


def save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True)
    else:
        image.save(buffer, "PNG", compress_level=encoding._PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


# The methods ------------------------------------------------------------------------------


def ours(photo: Photo) -> Outputs:
    out = imaging.render(io.BytesIO(photo.data), list(STYLES.values()), max_pixels=MAX_PIXELS)
    return [(name, rendition.data) for name, rendition in out.items()]


def naive_images(photo: Photo) -> dict[str, Image.Image]:
    """Full decode, upright, one LANCZOS from full size per style: also the reference."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.data)))
    im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    out = {}
    for name, plan in plans(photo).items():
        resized = im.resize(plan.resize, Image.Resampling.LANCZOS)
        out[name] = resized.crop(plan.crop) if plan.crop else resized
    return out


def naive(photo: Photo) -> Outputs:
    return [(name, save(image, photo.format)) for name, image in naive_images(photo).items()]


def _setup_django_peers() -> list[str]:
    """Configure Django for the peers that are installed; return their names."""
    import importlib.util

    apps = {
        "django-imagekit": "imagekit",
        "easy-thumbnails": "easy_thumbnails",
        "sorl-thumbnail": "sorl.thumbnail",
    }
    found = {name: app for name, app in apps.items() if importlib.util.find_spec(app.split(".")[0])}
    if found:
        import django
        from django.conf import settings

        if not settings.configured:
            settings.configure(
                # imagekit's own app would set up its cache backends (and django-rq's
                # queues, when installed): the pipeline measured needs only pilkit.
                INSTALLED_APPS=[app for app in found.values() if app != "imagekit"],
                THUMBNAIL_QUALITY=JPEG_QUALITY,  # easy-thumbnails and sorl
                THUMBNAIL_PROGRESSIVE=True,  # sorl: progressive JPEG, as ours
            )
            django.setup()
    return list(found)


def imagekit(photo: Photo) -> Outputs:
    from pilkit.processors import ProcessorPipeline, ResizeToFill, ResizeToFit, Transpose
    from pilkit.utils import open_image, save_image

    out = []
    pipelines = {
        "thumb": [Transpose(), ResizeToFit(100, 100, upscale=False)],
        "square": [Transpose(), ResizeToFill(200, 200)],
    }
    for name, processors in pipelines.items():
        image = ProcessorPipeline(processors).process(open_image(io.BytesIO(photo.data)))
        options = {"quality": JPEG_QUALITY, "progressive": True} if photo.format == "JPEG" else {}
        out.append((name, save_image(image, io.BytesIO(), photo.format, options).getvalue()))
    return out


def easy_thumbnails(photo: Photo) -> Outputs:
    from django.core.files.base import ContentFile
    from easy_thumbnails import engine

    out = []
    for name, options in (
        ("thumb", {"size": (100, 100)}),
        ("square", {"size": (200, 200), "crop": True}),
    ):
        source = engine.generate_source_image(ContentFile(photo.data), options)
        image = engine.process_image(source, options)
        filename = photo.path.name  # its extension picks the format
        saved = engine.save_pil_image(image, io.BytesIO(), filename, quality=JPEG_QUALITY)
        out.append((name, saved.getvalue()))
    return out


def sorl(photo: Photo) -> Outputs:
    from sorl.thumbnail.engines.pil_engine import Engine
    from sorl.thumbnail.parsers import parse_geometry

    engine = Engine()
    out = []
    for name, geometry, crop in (("thumb", "100x100", False), ("square", "200x200", "center")):
        source = engine.get_image(io.BytesIO(photo.data))
        info = engine.get_image_info(source)
        options = {
            "crop": crop,
            "upscale": False,
            "orientation": True,
            "colorspace": "RGB",
            "quality": JPEG_QUALITY,
            "format": photo.format,
            "cropbox": None,
            "rounded": None,
            "padding": False,
            "blur": None,
            "image_info": info,
            "replace_alpha": None,
        }
        size = parse_geometry(geometry, engine.get_image_ratio(source, options))
        image = engine.create(source, size, options)
        data = engine._get_raw_data(image, photo.format, JPEG_QUALITY, info, progressive=True)
        out.append((name, data))
    return out


DJANGO_PEERS = {
    "django-imagekit": imagekit,
    "easy-thumbnails": easy_thumbnails,
    "sorl-thumbnail": sorl,
}


def decode_floor(photo: Photo, gap: float = 1.0) -> Outputs:
    im = Image.open(io.BytesIO(photo.data))
    need = [max(plan.resize[i] for plan in plans(photo).values()) for i in (0, 1)]
    if im.format == "JPEG":  # EXIF orientations in the corpus are all 1: no swap needed
        im.draft(None, (int(need[0] * gap), int(need[1] * gap)))
    im.load()
    return []


def decode_at_our_scale(photo: Photo) -> Outputs:
    return decode_floor(photo, decoding._DRAFT_GAP)


def _source_path(photo: Photo, folder: Path) -> Path:
    if photo.path.exists():
        return photo.path
    path = folder / photo.path.name
    path.write_bytes(photo.data)
    return path


def paperclip_identify(photo: Photo, folder: Path) -> Outputs:
    """What Paperclip's Geometry.from_file runs before each style's convert."""
    source = f"{_source_path(photo, folder)}[0]"
    for _ in STYLES:
        subprocess.run(
            [IDENTIFY, "-format", "%wx%h,%[exif:orientation]", source],
            check=True,
            env=MAGICK_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # Paperclip swallows it too: images without EXIF warn
        )
    return []


def paperclip(photo: Photo, folder: Path) -> Outputs:
    source, ext = f"{_source_path(photo, folder)}[0]", photo.path.suffix
    out = []
    for name, plan in plans(photo).items():
        geometry = str(STYLES[name].geometry)
        if plan.crop:  # Paperclip's "#": -resize "Wx" or "xH", then its own crop offsets
            width, height = STYLES[name].geometry.width, STYLES[name].geometry.height
            left, top = plan.crop[:2]
            scale = f"{width}x" if plan.resize[0] == width else f"x{height}"
            args = ["-resize", scale, "-crop", f"{width}x{height}+{left}+{top}", "+repage"]
        else:
            args = ["-resize", geometry]
        target = folder / f"{name}{ext}"
        quality = ["-quality", str(JPEG_QUALITY)] if photo.format == "JPEG" else []
        subprocess.run(
            [CONVERT, source, "-auto-orient", *args, *quality, str(target)],
            check=True,
            env=MAGICK_ENV,
            stderr=subprocess.DEVNULL,
        )
        out.append((name, target.read_bytes()))
    return out


def magick_one_process(photo: Photo, folder: Path) -> Outputs:
    """Both styles from one decode, JPEG decoded small thanks to the size hint."""
    plan = plans(photo)
    need = [max(p.resize[i] for p in plan.values()) for i in (0, 1)]
    hint = ["-define", f"jpeg:size={2 * need[0]}x{2 * need[1]}"] if photo.format == "JPEG" else []
    ext = photo.path.suffix
    thumb, square = folder / f"thumb{ext}", folder / f"square{ext}"
    left, top = plan["square"].crop[:2]
    scale = "200x" if plan["square"].resize[0] == 200 else "x200"
    quality = ["-quality", str(JPEG_QUALITY)] if photo.format == "JPEG" else []
    subprocess.run(
        [
            CONVERT,
            *hint,
            f"{_source_path(photo, folder)}[0]",
            "-auto-orient",
            *quality,
            *["(", "+clone", "-resize", "100x100>", "-write", str(thumb), "+delete", ")"],
            *["-resize", scale, "-crop", f"200x200+{left}+{top}", "+repage", str(square)],
        ],
        check=True,
        env=MAGICK_ENV,
        stderr=subprocess.DEVNULL,
    )
    return [("thumb", thumb.read_bytes()), ("square", square.read_bytes())]


def vips(photo: Photo) -> Outputs:
    def encode(image) -> bytes:
        if photo.format == "JPEG":
            return image.jpegsave_buffer(Q=JPEG_QUALITY, interlace=True, strip=True)
        return image.pngsave_buffer(compression=encoding._PNG_COMPRESS_LEVEL, strip=True)

    thumb = pyvips.Image.thumbnail_buffer(photo.data, 100, height=100, size="down")
    square = pyvips.Image.thumbnail_buffer(photo.data, 200, height=200, crop="centre")
    return [("thumb", encode(thumb)), ("square", encode(square))]


def ours_as(fmt: str) -> Callable[[Photo], Outputs]:
    """Our two styles written as ``fmt`` at the configured default quality."""
    declared = {
        name: {"geometry": str(s.geometry), "format": fmt.lower()} for name, s in STYLES.items()
    }
    styles = list(parse_styles(declared).values())

    def run(photo: Photo) -> Outputs:
        out = imaging.render(
            io.BytesIO(photo.data),
            styles,
            max_pixels=MAX_PIXELS,
            avif_quality=AVIF_QUALITY,
            webp_quality=WEBP_QUALITY,
        )
        return [(name, rendition.data) for name, rendition in out.items()]

    return run


def vips_as(fmt: str) -> Callable[[Photo], Outputs]:
    """pyvips' two thumbnails written as ``fmt`` at the settings equal to ours (``MODERN``)."""

    def run(photo: Photo) -> Outputs:
        thumb = pyvips.Image.thumbnail_buffer(photo.data, 100, height=100, size="down")
        square = pyvips.Image.thumbnail_buffer(photo.data, 200, height=200, crop="centre")
        save = "heifsave_buffer" if fmt == "AVIF" else "webpsave_buffer"
        return [
            (name, getattr(image, save)(strip=True, **MODERN[fmt]))
            for name, image in (("thumb", thumb), ("square", square))
        ]

    return run


def _vips_writes_avif() -> bool:
    try:
        pyvips.Image.black(16, 16, bands=3).heifsave_buffer(**MODERN["AVIF"])
    except pyvips.Error:
        return False
    return True


def methods(passes: int, magick_passes: int, folder: Path) -> tuple[list[Method], list[str]]:
    found = [
        Method("ours (imaging.render)", ours, passes),
        Method("naive Pillow (Django peers)", naive, passes),
        Method("decode floor", decode_floor, passes, "JPEG draft >= 1x the resize, PNG full"),
        Method("decode at our scale", decode_at_our_scale, min(passes, 3), "JPEG draft >= 2x"),
    ]
    missing = []
    peers = _setup_django_peers()
    found += [Method(name, DJANGO_PEERS[name], passes) for name in peers]
    missing += [f"{name} (pip install -e '.[bench]')" for name in DJANGO_PEERS if name not in peers]
    modern = min(passes, 3)  # AV1 encoding is slow: fewer passes
    if imaging.encodes("AVIF"):
        found.append(Method("ours, AVIF", ours_as("AVIF"), modern))
    else:
        missing.append("AVIF in Pillow (Pillow 11.2+ built with libavif)")
    found.append(Method("ours, WebP", ours_as("WEBP"), modern))
    if pyvips is not None:
        found.append(Method("pyvips thumbnail", vips, passes))
        if _vips_writes_avif():
            found.append(Method("pyvips, AVIF", vips_as("AVIF"), modern))
        else:
            missing.append("AVIF in libvips (libheif with an AV1 encoder)")
        found.append(Method("pyvips, WebP", vips_as("WEBP"), modern))
    else:
        missing.append("pyvips (pip install -e '.[bench]': pyvips with its libvips wheel)")
    if _is_imagemagick():
        found += [
            Method(
                "Paperclip's convert per style",
                lambda p: paperclip(p, folder),
                magick_passes,
                warm_up=False,
            ),
            Method(
                "Paperclip's identify per style",
                lambda p: paperclip_identify(p, folder),
                magick_passes,
                warm_up=False,
            ),
            Method(
                "ImageMagick, 1 process + hint",
                lambda p: magick_one_process(p, folder),
                1,
                warm_up=False,
            ),
        ]
    else:
        missing.append(f"ImageMagick at {CONVERT} (apt-get install imagemagick)")
    return found, missing


def paperclip_whole(measured: list[Method]) -> list[Method]:
    """Paperclip's two commands per style as one method: their CPU times added pass by pass."""
    by_name = {m.name: m for m in measured}
    identify = by_name.get("Paperclip's identify per style")
    convert = by_name.get("Paperclip's convert per style")
    if identify is None or convert is None:
        return []
    times = {
        fmt: [a + b for a, b in zip(identify.times[fmt], convert.times[fmt], strict=True)]
        for fmt in convert.times
    }
    whole = Method(
        PAPERCLIP,
        convert.run,
        convert.passes,
        "its identify and convert rows, added",
        warm_up=False,
    )
    whole.times, whole.outputs = times, convert.outputs
    return [whole]


def _is_imagemagick() -> bool:
    try:
        version = subprocess.run([CONVERT, "-version"], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "ImageMagick" in version


# Measuring --------------------------------------------------------------------------------


def measure(all_methods: list[Method], photos: list[Photo]) -> None:
    formats = sorted({p.format for p in photos})
    most = max(m.passes for m in all_methods)
    for number in range(most + 1):  # pass 0 warms up; the first pass run keeps the outputs
        for method in all_methods:
            if number > method.passes or (number == 0 and not method.warm_up):
                continue
            per_format = {}
            for fmt in formats:
                start = cpu()
                for photo in (p for p in photos if p.format == fmt):
                    outputs = method.run(photo)
                    if photo.path not in method.outputs:
                        method.outputs[photo.path] = outputs
                per_format[fmt] = cpu() - start
                if number:
                    method.times.setdefault(fmt, []).append(per_format[fmt])
            log(f"pass {number}: {method.name}: {sum(per_format.values()):.1f} s CPU")


def check_sizes(method: Method, photos: list[Photo]) -> tuple[int, int, list[str]]:
    """Outputs whose decoded size equals Geometry.plan's, of how many; a few examples."""
    right = total = 0
    wrong = []
    for photo in photos:
        expected = {name: plan.size for name, plan in plans(photo).items()}
        for name, data in method.outputs.get(photo.path, []):
            total += 1
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.size == expected[name]:
                    right += 1
                elif len(wrong) < 3:
                    wrong.append(f"{photo.name} {name}: {im.size} != {expected[name]}")
    return right, total, wrong


def flat(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        a = a.resize(b.size, Image.Resampling.LANCZOS)  # a peer off by a pixel
    rms = ImageStat.Stat(ImageChops.difference(flat(a), flat(b))).rms
    mse = sum(v * v for v in rms) / len(rms)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def quality(all_methods: list[Method], photos: list[Photo]) -> dict[tuple[str, str], list[float]]:
    """PSNR of each (method, source format)'s outputs against full-size LANCZOS."""
    scores: dict[tuple[str, str], list[float]] = {}
    for photo in photos:
        reference = naive_images(photo)
        for method in all_methods:
            for name, data in method.outputs.get(photo.path, []):
                score = psnr(Image.open(io.BytesIO(data)), reference[name])
                scores.setdefault((method.name, photo.format), []).append(score)
    return scores


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec() from the forking parent.
_RSS_SCRIPT = """
import io, re, sys
sys.path.insert(0, sys.argv[1])
from attachments import imaging
from attachments.conf import DEFAULTS
from attachments.styles import parse_styles
def peak():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024
styles = list(parse_styles({"thumb": "100x100>", "square": "200x200#"}).values())
data = open(sys.argv[2], "rb").read()
before = peak()
imaging.render(io.BytesIO(data), styles, max_pixels=50_000_000)
print(before, peak())
"""


def peak_rss(data: bytes, folder: Path) -> tuple[int, int]:
    """(MB before rendering, peak MB) of a fresh process rendering ``data``."""
    path = folder / "rss-input"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, _script.ROOT, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    before, peak = result.stdout.split()
    return int(before), int(peak)


def threads_speedup(photos: list[Photo]) -> dict[int, tuple[float, float]] | None:
    """Rendering ``photos`` on 1 and on 2 threads (2 cores): (wall s, CPU s), best of 2.

    CPU over wall time shows whether the threads ran at once, however busy the
    machine's other processes keep the cores: with the GIL held it stays at 1.
    """
    cores = os.sched_getaffinity(0)
    all_cores = set(range(os.cpu_count() or 1))
    if len(all_cores) < 2:
        return None
    os.sched_setaffinity(0, all_cores)
    try:
        best: dict[int, tuple[float, float]] = {}
        for workers in (1, 2, 1, 2):
            wall, used = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(ours, photos))
            result = (time.perf_counter() - wall, time.process_time() - used)
            best[workers] = min(best.get(workers, result), result)
        return best
    finally:
        os.sched_setaffinity(0, cores)


# Report -----------------------------------------------------------------------------------


DRAFT_GAPS = (2.0, 1.5, 1.0)


def draft_gaps(photos: list[Photo], passes: int) -> None:
    """Print render's speed against the floor and its styles' fidelity at each DCT gap."""
    references = {photo.path: naive_images(photo) for photo in photos}
    lossless = ours_as("PNG")  # the styles' pixels as made, no encoder's loss on top

    def fastest(method: Callable[[Photo], Outputs]) -> float:
        times = []
        for _ in range(passes):
            start = cpu()
            for photo in photos:
                method(photo)
            times.append(cpu() - start)
        return min(times)

    floor = fastest(decode_floor)
    print(f"\nDCT scaling gap: {len(photos)} JPEG photos, both styles, best of {passes} passes")
    print(f"(the decode floor: {floor:.2f} s of CPU; PSNR of the styles' pixels, in dB)\n")
    header = f"{'gap':>5}{'render s':>10}{'/ floor':>9}{'PSNR mean':>11}{'worst':>8}"
    print(header)
    print("-" * len(header))
    chosen = decoding._DRAFT_GAP
    try:
        for gap in DRAFT_GAPS:
            decoding._DRAFT_GAP = gap
            seconds = fastest(ours)
            scores = [
                psnr(Image.open(io.BytesIO(data)), references[photo.path][name])
                for photo in photos
                for name, data in lossless(photo)
            ]
            print(
                f"{gap:5.2f}{seconds:10.2f}{floor / seconds:9.2f}"
                f"{statistics.mean(scores):11.1f}{min(scores):8.1f}"
                + ("  (imaging's)" if gap == chosen else "")
            )
    finally:
        decoding._DRAFT_GAP = chosen


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a spread of 16 images, 3 passes")
    parser.add_argument("--passes", type=int, default=None)
    parser.add_argument(
        "--draft-gaps",
        action="store_true",
        help="instead: render's speed and its styles' fidelity at each DCT scaling gap",
    )
    args = parser.parse_args()
    passes = args.passes or (3 if args.quick else 5)
    magick_passes = 1 if args.quick else 2

    corpus = corpus_module.load(limit=16 if args.quick else None)
    if args.draft_gaps:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        draft_gaps(corpus.only("JPEG"), passes)
        return
    photos = corpus.photos
    folder = Path(tempfile.mkdtemp(prefix="attachments-bench-processing-"))
    try:
        all_methods, missing = methods(passes, magick_passes, folder)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        log(f"{len(photos)} images, {passes} passes, pinned to core {os.sched_getaffinity(0)}")
        measure(all_methods, photos)
        all_methods += paperclip_whole(all_methods)
        sizes = {m.name: check_sizes(m, photos) for m in all_methods if m.outputs[photos[0].path]}
        log("quality against full-size LANCZOS")
        scores = quality(all_methods, photos)
        log("peak RSS in fresh processes")
        largest = max(photos, key=lambda p: p.size[0] * p.size[1])
        big = corpus_module.big_jpeg()
        rss = {
            f"largest photo, {largest.name} ({largest.size[0]}x{largest.size[1]})": peak_rss(
                largest.data, folder
            ),
            f"18 MP baseline JPEG (5184x3456, {len(big) / 1e6:.1f} MB)": peak_rss(big, folder),
        }
        log("1 thread vs 2 threads")
        jpegs = corpus.only("JPEG") or photos
        threads = threads_speedup(jpegs * (1 if args.quick else 2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(corpus, all_methods, missing, sizes, scores, rss, threads, args.quick)


def report(corpus, all_methods, missing, sizes, scores, rss, threads, quick) -> None:
    photos = corpus.photos
    formats = sorted({p.format for p in photos})
    by_name = {m.name: m for m in all_methods}
    mode = "--quick" if quick else "full run"
    print(f"\nThumbnailing per core ({mode}): styles thumb 100x100> and square 200x200#,")
    print(f"written as progressive JPEG q{JPEG_QUALITY} from a JPEG, PNG from a PNG")
    print(f"Corpus: {corpus.describe()}")
    print(f"Tools: {_versions(by_name)}")
    for item in missing:
        print(f"Missing, not measured: {item}")
    print(f"Load average at the end: {os.getloadavg()[0]:.1f} (other processes share the machine)")
    print()
    columns = ["all", *formats]
    header = f"{'images/s per core':31}" + "".join(f"{c:>8}" for c in columns) + f"{'passes':>8}"
    header += f"{'size = plan':>13}" + "".join(f"{'PSNR ' + f:>14}" for f in formats)
    print(header)
    print("-" * len(header))
    for method in all_methods:
        rates = [method.rate(photos, fmt) for fmt in [None, *formats]]
        right, total, _ = sizes.get(method.name, (0, 0, []))
        row = f"{method.name:31}" + "".join(f"{r:8.2f}" for r in rates) + f"{method.passes:8}"
        row += f"{f'{right}/{total}' if total else '-':>13}"
        for fmt in formats:
            found = scores.get((method.name, fmt))
            row += f"{f'{statistics.mean(found):.1f}/{min(found):.1f}' if found else '-':>14}"
        print(row)
    for method in all_methods:
        if method.note:
            print(f"  {method.name}: {method.note}")
        for example in sizes.get(method.name, (0, 0, []))[2]:
            print(f"  size differs, {method.name}: {example}")
    print(
        textwrap.fill(
            "PSNR: mean/worst dB of the decoded outputs against a full-size decode and "
            "LANCZOS of the upright image (RGB on white); naive Pillow is that reference "
            "after encoding, so its JPEG figure is the loss of q85 encoding alone.",
            100,
        )
    )
    ours = by_name["ours (imaging.render)"]
    print("\nRatios, ours / other (images/s in this run); targets on the photos (JPEG):")
    peers = {
        "pyvips": "pyvips thumbnail",
        "Django peer": "naive Pillow (Django peers)",
        **{name: name for name in DJANGO_PEERS},
        "Paperclip": PAPERCLIP,
        "Paperclip's convert": "Paperclip's convert per style",
        "decode floor": "decode floor",
    }
    modern = {
        "pyvips, AVIF": ("ours, AVIF", "pyvips, AVIF"),
        "pyvips, WebP": ("ours, WebP", "pyvips, WebP"),
    }
    print(f"  {'':27}" + "".join(f"{c:>8}" for c in columns) + "  target")
    for label, name in peers.items():
        if name not in by_name:
            print(f"  ours / {label:19} not measured: tool missing")
            continue
        ratios = {fmt: ours.rate(photos, fmt) / by_name[name].rate(photos, fmt) for fmt in formats}
        ratios = {"all": ours.rate(photos) / by_name[name].rate(photos), **ratios}
        photo_ratio = ratios.get("JPEG", ratios["all"])
        target = TARGETS.get(label)
        judged = f"  >= {target:<4} {verdict(photo_ratio >= target)}" if target else "  (reference)"
        print(f"  ours / {label:19}" + "".join(f"{r:8.2f}" for r in ratios.values()) + judged)
    for label, (mine, theirs) in modern.items():
        if mine not in by_name or theirs not in by_name:
            print(f"  ours / {label:19} not measured: tool missing")
            continue
        ratios = {
            fmt: by_name[mine].rate(photos, fmt) / by_name[theirs].rate(photos, fmt)
            for fmt in formats
        }
        ratios = {"all": by_name[mine].rate(photos) / by_name[theirs].rate(photos), **ratios}
        photo_ratio = ratios.get("JPEG", ratios["all"])
        target = TARGETS[label]
        print(
            f"  ours / {label:19}"
            + "".join(f"{r:8.2f}" for r in ratios.values())
            + f"  >= {target:<4} {verdict(photo_ratio >= target)}"
        )
    print(
        textwrap.fill(
            f"  Modern formats at equal settings: AVIF quality {AVIF_QUALITY} speed "
            f"{encoding._AVIF_SPEED} = libvips Q {AVIF_QUALITY} effort {9 - encoding._AVIF_SPEED} "
            f"(libvips gives aom speed 9 - effort); WebP quality {WEBP_QUALITY} method "
            f"{encoding._WEBP_METHOD} = libvips Q {WEBP_QUALITY} effort {encoding._WEBP_METHOD}. "
            + _bytes(by_name),
            100,
            subsequent_indent="  ",
        )
    )
    right, total, _ = sizes[ours.name]
    print(
        f"  ours: outputs the size Geometry.plan gives: {right}/{total}  {verdict(right == total)}"
    )
    print("\nPeak RSS rendering both styles, fresh process (after imports -> peak):")
    for label, (before, peak) in rss.items():
        print(f"  {label}: {before} -> {peak} MB  <= {MAX_RSS_MB} MB {verdict(peak <= MAX_RSS_MB)}")
    if threads:
        (wall1, cpu1), (wall2, cpu2) = threads[1], threads[2]
        print(
            f"\nThreads, JPEGs on 2 cores: 1 thread {wall1:.2f} s wall ({cpu1 / wall1:.2f} cores "
            f"busy), 2 threads {wall2:.2f} s wall ({cpu2 / wall2:.2f} cores busy): "
            f"{wall1 / wall2:.2f}x.\nMore than 1 core busy means Pillow released the GIL while "
            "decoding, resampling and encoding; below 2x, other processes had the cores."
        )


def _bytes(by_name: dict[str, Method]) -> str:
    """Total output bytes of each modern-format method: equal settings make equal files."""
    totals = [
        f"{name} {sum(len(data) for out in m.outputs.values() for _, data in out) / 1e6:.2f}"
        for name, m in by_name.items()
        if name.startswith(("ours, ", "pyvips, "))
    ]
    return f"Output MB: {', '.join(totals)}." if totals else ""


def _versions(by_name: dict[str, Method]) -> str:
    pillow = (
        f"Pillow {Image.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}, "
        f"zlib {features.version('zlib')}, libwebp {features.version('webp')}, "
        f"libavif {features.version('avif')})"
    )
    tools = [f"Python {sys.version.split()[0]}", pillow]
    if pyvips is not None:
        libvips = ".".join(str(pyvips.version(i)) for i in range(3))
        tools.append(f"pyvips {pyvips.__version__} (libvips {libvips})")
    if PAPERCLIP in by_name:
        tools.append(_magick_version())
    return ", ".join(tools)


def _magick_version() -> str:
    first = subprocess.run([CONVERT, "-version"], capture_output=True, text=True).stdout
    return " ".join(first.split()[1:3])


if __name__ == "__main__":
    main()
