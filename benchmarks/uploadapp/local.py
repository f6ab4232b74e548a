"""Django set up in this process on the upload app, over SQLite in a temporary folder."""

from __future__ import annotations

import os
import tempfile


def setup(prefix: str) -> str:
    """Configure Django for a new folder (``prefix`` names it), migrate; return the folder.

    The database and the media are the folder's, like a server's; the caller
    removes the folder.
    """
    folder = tempfile.mkdtemp(prefix=prefix)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="benchmarks.uploadapp.settings",
        UPLOADAPP_DB="sqlite",
        UPLOADAPP_DB_NAME=os.path.join(folder, "db.sqlite3"),
        UPLOADAPP_MEDIA_ROOT=os.path.join(folder, "media"),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    return folder
