"""The demo's URLs, with media served whatever DEBUG says (the browser tests need it)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.static import serve

from demo_site.urls import urlpatterns as demo_urlpatterns


def media(request: HttpRequest, path: str) -> HttpResponse:
    # MEDIA_ROOT is per test, so read it per request.
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [*demo_urlpatterns, re_path(r"^media/(?P<path>.*)$", media)]
