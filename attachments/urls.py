from django.urls import path

from . import views

app_name = "attachments"

urlpatterns = [
    path("status/<str:token>/", views.attachment_status, name="status"),
]
