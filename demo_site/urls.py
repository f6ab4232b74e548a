from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.items, name="items"),
    path("banners/", views.banners, name="banners"),
    path("admin/", admin.site.urls),
    path("attachments/", include("attachments.urls")),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]
