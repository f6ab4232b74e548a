from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .forms import ItemForm
from .models import Banner, Item


def items(request: HttpRequest) -> HttpResponse:
    """List items with their thumbnails; upload a new one."""
    form = ItemForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("items")
    return render(request, "demo_site/items.html", {"form": form, "items": Item.objects.all()[:50]})


def banners(request: HttpRequest) -> HttpResponse:
    """Banners as responsive <picture>s: AVIF, WebP or JPEG, at the width the screen needs."""
    return render(request, "demo_site/banners.html", {"banners": Banner.objects.order_by("-pk")})
