from django.urls import path

from synthesis import views

app_name = "synthesis"

urlpatterns = [
    path("speak/", views.speak_page, name="speak"),
    path("speak/history", views.speak_history, name="speak-history"),
    path("speak/jobs/<int:job_id>/audio", views.job_audio, name="job-audio"),
]
