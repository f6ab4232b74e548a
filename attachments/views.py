"""The status endpoint that pages poll while an attachment is processing."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from . import status


@require_GET
def attachment_status(request: HttpRequest, token: str) -> JsonResponse:
    """Return ``{"state": ..., "urls": {style: url}}`` (and ``"preview"``) for a signed token."""
    try:
        payload = status.read(token)
    except status.BadToken:
        response = JsonResponse({"error": "unknown or expired attachment"}, status=404)
        patch_cache_control(response, no_store=True)
        return response
    response = JsonResponse(payload)
    if payload["state"] == "processing":
        patch_cache_control(response, no_store=True)
    else:
        # Settled: a page reloading soon after may reuse it. Private, as the
        # URLs may be signed for this visitor.
        patch_cache_control(response, private=True, max_age=60)
    return response
