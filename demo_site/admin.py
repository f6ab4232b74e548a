from django.contrib import admin

from attachments.admin import thumbnail

from .models import Banner, Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", thumbnail("image"), "image_state", "created_at"]
    list_filter = ["image_state"]


@admin.register(Banner)
class BannerAdmin(admin.ModelAdmin):
    list_display = ["title", thumbnail("image"), "image_state"]
