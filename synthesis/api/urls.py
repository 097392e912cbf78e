from django.urls import path

from synthesis.api.catalog import EngineListView, LanguageListView
from synthesis.api.views import JobViewSet, SpeechStreamView, SpeechView
from tenants.api_base import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [
    path("speech", SpeechView.as_view(), name="speech"),
    path("speech/", SpeechView.as_view()),
    path("speech/stream", SpeechStreamView.as_view(), name="speech-stream"),
    path("speech/stream/", SpeechStreamView.as_view()),
    path("engines", EngineListView.as_view(), name="engine-list"),
    path("engines/", EngineListView.as_view()),
    path("languages", LanguageListView.as_view(), name="language-list"),
    path("languages/", LanguageListView.as_view()),
    *router.urls,
]
