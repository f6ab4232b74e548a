"""An upload view per model, the way a site takes uploads: a ModelForm, saved."""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from attachments.models import Job

MODELS = ("plainupload", "backgroundupload", "manystylesupload", "foregroundupload")


@csrf_exempt
def upload(request: HttpRequest, model: str, pk: int | None = None) -> HttpResponse:
    """Validate and save one upload; 201 with the record's state, 400 with the form errors.

    With ``pk``, the upload replaces the image of that record, as an edit form does.
    """
    model_class = apps.get_model("uploadapp", model)
    form_class = forms.modelform_factory(model_class, fields=["image"])
    instance = None if pk is None else model_class.objects.get(pk=pk)
    form = form_class(request.POST, request.FILES, instance=instance)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_json(), content_type="application/json")
    record = form.save()
    return JsonResponse({"id": record.pk, "state": getattr(record, "image_state", "")}, status=201)


def stats(request: HttpRequest) -> HttpResponse:
    """Records per model and state, and jobs queued: the benchmark checks its work with it."""
    out: dict[str, object] = {"jobs": Job.objects.count()}
    for name in MODELS:
        model_class = apps.get_model("uploadapp", name)
        states = model_class.objects.values_list(
            "image_state" if name != "plainupload" else "image", flat=True
        )
        out[name] = sorted(states) if name != "plainupload" else len(states)
    return JsonResponse(out)
