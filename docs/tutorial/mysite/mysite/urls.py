from django.conf import settings
from django.conf.urls.static import static
from django.urls import include, path

from gallery import views

urlpatterns = [
    path("", views.photos, name="photos"),
    # The status endpoint that placeholders poll until their image is ready.
    path("attachments/", include("attachments.urls")),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]
