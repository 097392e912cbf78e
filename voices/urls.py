from django.urls import path

from voices import views

app_name = "voices"

urlpatterns = [
    path("voices/", views.voice_index, name="index"),
    path("voices/new", views.voice_create, name="create"),
    path("voices/recordings/check", views.reference_check, name="reference-check"),
    path("voices/catalog/<str:voice_id>/preview", views.catalog_preview, name="catalog-preview"),
    path("voices/<int:voice_id>/", views.voice_detail, name="detail"),
    path("voices/<int:voice_id>/delete", views.voice_delete, name="delete"),
    path("voices/<int:voice_id>/status", views.voice_status, name="status"),
    path("voices/<int:voice_id>/preview", views.voice_preview, name="preview"),
    path("voices/<int:voice_id>/recordings", views.reference_add, name="reference-add"),
    path("voices/<int:voice_id>/recordings/<int:reference_id>/delete", views.reference_delete,
         name="reference-delete"),
]
