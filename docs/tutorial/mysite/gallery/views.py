from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .models import Photo


class PhotoForm(forms.ModelForm):
    class Meta:
        model = Photo
        fields = ["title", "image"]


def photos(request: HttpRequest) -> HttpResponse:
    form = PhotoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        form.save()  # returns at once: the styles are made by the worker
        return redirect("photos")
    return render(request, "gallery/photos.html", {"form": form, "photos": Photo.objects.all()})
