from django.urls import path

from tenants import views

app_name = "tenants"

urlpatterns = [
    path("keys/", views.keys_page, name="keys"),
    path("keys/<int:key_id>/revoke", views.key_revoke, name="key-revoke"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/members", views.member_add, name="member-add"),
    path("settings/members/<int:membership_id>/remove", views.member_remove, name="member-remove"),
    path("settings/members/<int:membership_id>/role", views.member_role_change, name="member-role"),
    path("settings/invitations/<int:invitation_id>/revoke", views.invitation_revoke_view, name="invitation-revoke"),
    path("invitations/<str:token>/", views.invitation_accept_page, name="invitation-accept"),
    path("settings/webhook", views.webhook_update, name="webhook-update"),
    path("settings/webhook/rotate-secret", views.webhook_secret_rotate, name="webhook-rotate"),
    path("switch-tenant", views.tenant_switch, name="switch"),
]
