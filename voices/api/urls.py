from tenants.api_base import OptionalSlashRouter
from voices.api.views import VoiceViewSet

router = OptionalSlashRouter()
router.register("voices", VoiceViewSet, basename="voice")

urlpatterns = router.urls
