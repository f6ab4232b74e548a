"""The status endpoint routed, so the workers' system checks have nothing to say."""

from django.urls import include, path

urlpatterns = [path("attachments/", include("attachments.urls"))]
