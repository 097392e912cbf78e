from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView
from django_ratelimit.decorators import ratelimit
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.health import health
from config.metrics import metrics
from synthesis.api.openai import OpenAISpeechView
from tenants.accounts_urls import sign_in_account_key

# Operators' login is a brute-force target: at most 10 POSTs per minute per client address
# (config.client_address, through RATELIMIT_IP_META_KEY) and per account.
admin.site.login = ratelimit(key="ip", rate="10/m", method="POST", block=True)(
    ratelimit(key=sign_in_account_key, rate="10/m", method="POST", block=True)(admin.site.login)
)
admin.site.site_header = "Parla operations"
admin.site.site_title = "Parla"

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # The dashboard: sign-in under /accounts/, the tenant's pages under /app/.
    path("accounts/", include("tenants.accounts_urls")),
    path("app/", RedirectView.as_view(pattern_name="synthesis:speak"), name="dashboard"),
    path("app/", include("synthesis.urls")),
    path("app/", include("tenants.urls")),
    path("app/", include("analytics.urls")),
    path("app/", include("voices.urls")),
    path("app/", include("batches.urls")),
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("voices.api.urls")),
    path("api/v1/", include("synthesis.api.urls")),
    path("api/v1/", include("batches.api.urls")),
    path("api/v1/", include("analytics.api.urls")),
    # OpenAI-compatible: clients set base_url to "<parla>/v1".
    path("v1/audio/speech", OpenAISpeechView.as_view(), name="openai-speech"),
    path("v1/audio/speech/", OpenAISpeechView.as_view()),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

handler404 = "tenants.errors.handler404"
handler500 = "tenants.errors.handler500"
