from django.contrib import admin

from .models import Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "image_state", "created_at"]
    list_filter = ["image_state"]
    readonly_fields = ["image_state"]
