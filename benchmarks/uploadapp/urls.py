from django.urls import path

from . import views

urlpatterns = [
    path("upload/<str:model>/", views.upload),
    path("upload/<str:model>/<int:pk>/", views.upload),
    path("stats/", views.stats),
]
