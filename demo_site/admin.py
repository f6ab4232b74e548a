from django.contrib import admin

from attachments.admin import thumbnail

from .models import Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", thumbnail("image"), "image_state", "created_at"]
    list_filter = ["image_state"]
