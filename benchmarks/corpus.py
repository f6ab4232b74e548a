"""The images the benchmarks work on.

Real photos when the Debian wallpaper packages are installed
(``apt-get install plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers``):
every distinct JPEG, PNG and WebP under ``/usr/share/wallpapers`` and
``/usr/share/backgrounds``, less the small ``screenshot.*`` previews and the
symlinks to other sizes. Otherwise generated images, which the benchmarks say
they used: noise blurred to photo-like detail, as JPEG and PNG at wallpaper sizes.
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a file: fix sys.path as the scripts do
    import _script  # noqa: F401

import hashlib
import io
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOTS = (Path("/usr/share/wallpapers"), Path("/usr/share/backgrounds"))
PACKAGES = "plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers"
MAX_PIXELS = 50_000_000  # what the benchmarks allow; every photo here is below it
EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
# Sizes of the generated stand-ins (a mix like the real corpus's).
_GENERATED = [((5120, 2880), "JPEG"), ((3840, 2400), "JPEG"), ((2560, 1600), "JPEG")] * 4 + [
    ((1920, 1200), "PNG"),
    ((3840, 2160), "PNG"),
]


@dataclass(frozen=True)
class Photo:
    path: Path
    format: str  # Pillow's name
    size: tuple[int, int]
    data: bytes

    @property
    def name(self) -> str:
        parts = self.path.parts
        if "contents" in parts:  # KDE: <name>/contents/images[_dark]/<size>.<ext>
            dark = "-dark" if "images_dark" in parts else ""
            return f"{parts[parts.index('contents') - 1]}{dark}/{self.path.name}"
        return "/".join(parts[-2:])


@dataclass(frozen=True)
class Corpus:
    photos: list[Photo]
    real: bool
    refused: tuple[str, ...] = ()  # real photos the app refuses to read, left out

    def describe(self) -> str:
        counts = {fmt: sum(p.format == fmt for p in self.photos) for fmt in ("JPEG", "PNG", "WEBP")}
        kinds = ", ".join(f"{n} {fmt}" for fmt, n in counts.items() if n)
        megapixels = [p.size[0] * p.size[1] / 1e6 for p in self.photos]
        mb = sum(len(p.data) for p in self.photos) / 1e6
        where = (
            f"real photos from {', '.join(str(r) for r in ROOTS)} (Debian: {PACKAGES})"
            if self.real
            else f"GENERATED images: no real photos found; apt-get install {PACKAGES}"
        )
        return (
            f"{len(self.photos)} images ({kinds}), {min(megapixels):.1f}-{max(megapixels):.1f} MP, "
            f"{mb:.0f} MB, {sum(map(_progressive, self.photos))} progressive JPEGs; {where}"
            + (
                f"; left out, refused by imaging.probe: {', '.join(self.refused)}"
                if self.refused
                else ""
            )
        )

    def only(self, fmt: str) -> list[Photo]:
        return [p for p in self.photos if p.format == fmt]


def load(*, limit: int | None = None, formats: tuple[str, ...] = ("JPEG", "PNG")) -> Corpus:
    """Every distinct real photo in ``formats``, else generated ones; ``limit`` takes a spread."""
    from attachments import imaging
    from attachments.exceptions import InvalidImage

    photos, seen, refused = [], set(), []
    for root in ROOTS:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            fmt = EXTENSIONS.get(path.suffix.lower())
            if fmt not in formats or path.is_symlink() or path.name.startswith("screenshot"):
                continue
            data = path.read_bytes()
            digest = hashlib.sha1(data).digest()
            if digest in seen:
                continue
            seen.add(digest)
            try:  # e.g. a header past headers.MAX_HEADER_BYTES: uploads of it are refused
                imaging.probe(io.BytesIO(data), max_pixels=MAX_PIXELS)
            except InvalidImage:
                refused.append(str(path))
                continue
            with Image.open(io.BytesIO(data)) as im:
                photos.append(Photo(path, fmt, im.size, data))
    real = bool(photos)
    if not real:
        photos = [p for p in _generated() if p.format in formats]
    if limit and len(photos) > limit:
        step = len(photos) / limit
        photos = [photos[int(i * step)] for i in range(limit)]
    return Corpus(photos, real, tuple(refused))


def big_jpeg(size: tuple[int, int] = (5184, 3456), quality: int = 90) -> bytes:
    """An 18 MP camera-sized JPEG: the largest real photo cropped and scaled to ``size``."""
    jpegs = load(formats=("JPEG",)).photos
    source = max(jpegs, key=lambda p: p.size[0] * p.size[1])
    with Image.open(io.BytesIO(source.data)) as im:
        im = im.convert("RGB")
        # Crop to the aspect ratio, then scale: detail stays that of a photo.
        ratio = size[0] / size[1]
        width = min(im.width, int(im.height * ratio))
        height = int(width / ratio)
        left, top = (im.width - width) // 2, (im.height - height) // 2
        im = im.crop((left, top, left + width, top + height)).resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _progressive(photo: Photo) -> bool:
    if photo.format != "JPEG":
        return False
    with Image.open(io.BytesIO(photo.data)) as im:
        return bool(im.info.get("progressive"))


def _generated() -> list[Photo]:
    rng = random.Random(7)
    out = []
    folder = Path(tempfile.gettempdir())
    for i, (size, fmt) in enumerate(_GENERATED):
        small = (size[0] // 24, size[1] // 24)
        noise = bytes(rng.randrange(256) for _ in range(3 * small[0] * small[1]))
        im = Image.frombytes("RGB", small, noise).resize(size, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        im.save(
            buffer, fmt, **({"quality": 90, "progressive": i % 2 == 0} if fmt == "JPEG" else {})
        )
        out.append(Photo(folder / f"generated-{i}.{fmt.lower()}", fmt, size, buffer.getvalue()))
    return out


if __name__ == "__main__":
    corpus = load()
    print(corpus.describe())
    for photo in corpus.photos:
        print(f"  {photo.format:4} {photo.size[0]:5}x{photo.size[1]:<5} {photo.name}")
