from batches.api.views import BatchViewSet
from tenants.api_base import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("batches", BatchViewSet, basename="batch")

urlpatterns = router.urls
