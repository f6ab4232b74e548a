from django.urls import include, path

from . import views

urlpatterns = [
    path("upload/<str:model>/", views.upload),
    path("upload/<str:model>/<int:pk>/", views.upload),
    path("stats/", views.stats),
    # As a project that shows its uploads has it (and attachments.W040 asks for).
    path("attachments/", include("attachments.urls")),
]
