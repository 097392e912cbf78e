from django.urls import path

from batches import views

app_name = "batches"

urlpatterns = [
    path("batches/", views.batch_index, name="index"),
    path("batches/new", views.batch_create_page, name="create"),
    path("batches/<int:batch_id>/", views.batch_detail, name="detail"),
    path("batches/<int:batch_id>/progress", views.batch_progress_json, name="progress"),
    path("batches/<int:batch_id>/cancel", views.batch_cancel_view, name="cancel"),
    path("batches/<int:batch_id>/retry", views.batch_retry_view, name="retry"),
    path("batches/<int:batch_id>/export", views.batch_export_download, name="export"),
    path("batches/<int:batch_id>/items/<int:job_id>/audio", views.batch_item_audio, name="item-audio"),
]
