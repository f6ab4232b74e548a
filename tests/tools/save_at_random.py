"""Save, re-upload, clear and delete a few records at random, as concurrent web processes would.

Run by tests/test_versions.py in several processes at once. Prints one JSON
line per staged upload, ``{"name": ..., "colour": [r, g, b]}``, so the test
knows which colour every version's styles must have.
"""

from __future__ import annotations

import io
import json
import random
import sys

import django


def main(seed: int, pks: list[int], count: int) -> None:
    django.setup()
    from django.core.files.base import ContentFile
    from django.db import IntegrityError
    from PIL import Image

    from demo_site.models import Item

    rng = random.Random(seed)
    for _ in range(count):
        item = Item.objects.filter(pk=rng.choice(pks)).first()
        if item is None:
            continue
        action = rng.random()
        try:
            if action < 0.7:
                colour = tuple(rng.randrange(256) for _ in range(3))
                buffer = io.BytesIO()
                Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
                item.image.save("r.png", ContentFile(buffer.getvalue()), save=False)
                print(json.dumps({"name": item.image.name, "colour": colour}), flush=True)
                item.save()
            elif action < 0.85:
                item.title = f"edited {rng.random()}"
                item.save()  # a plain save of what may be a stale instance
            elif action < 0.97:
                item.image.delete()
            else:
                item.delete()
        except IntegrityError:
            # Saving a record another process deleted inserts it again (Django's
            # save()); two processes doing so at once collide on the pk, as any
            # edit view would. What the loser staged is housekeeping's.
            continue


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(pk) for pk in sys.argv[2].split(",")], int(sys.argv[3]))
