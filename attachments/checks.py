"""System checks for the project-wide settings; fields check themselves."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .conf import DEFAULTS, conf


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    configured = getattr(settings, "ATTACHMENTS", {})
    if not isinstance(configured, dict):
        return [checks.Error("ATTACHMENTS must be a dict.", id="attachments.E101")]
    unknown = sorted(set(configured) - set(DEFAULTS))
    if unknown:
        errors.append(
            checks.Error(
                f"Unknown ATTACHMENTS setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="attachments.E102",
            )
        )
    if conf.BACKEND not in ("database", "immediate"):
        errors.append(
            checks.Error(
                f"ATTACHMENTS['BACKEND'] is {conf.BACKEND!r}.",
                hint="Use 'database' or 'immediate'.",
                id="attachments.E103",
            )
        )
    alias = conf.STAGING_STORAGE
    if alias and alias not in settings.STORAGES:
        errors.append(
            checks.Error(
                f"ATTACHMENTS['STAGING_STORAGE'] is {alias!r}, which is not in STORAGES.",
                hint="Add it to STORAGES or leave STAGING_STORAGE unset.",
                id="attachments.E104",
            )
        )
    for key in ("MAX_BYTES", "MAX_PIXELS", "MAX_ATTEMPTS"):
        value = getattr(conf, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                checks.Error(
                    f"ATTACHMENTS[{key!r}] must be a positive integer, not {value!r}.",
                    id="attachments.E105",
                )
            )
    return errors
