"""Dashboard sign-in, sign-out and password reset: Django's auth views with our templates.

The URL names are Django's own (login, logout, password_reset...), which its views reverse.
"""

from functools import wraps

from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django.urls import path
from django_ratelimit.decorators import ratelimit
from django_ratelimit.exceptions import Ratelimited

from tenants.forms import ParlaPasswordResetForm, SignInForm


def _too_many_attempts_page(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Ratelimited:
            return render(request, "registration/too_many_attempts.html", status=429)

    return wrapper


def sign_in_account_key(group, request) -> str:
    """The account a sign-in attempt is for, as the sign-in form reads it.

    SECURITY: normalised, so that "Alice@X.com " and "alice@x.com" (the same account) share
    one budget instead of multiplying it.
    """
    return request.POST.get("username", "").strip().lower()


# Sign-in is a brute-force target: per address and per account, like the operators' login.
# key="ip" is the client's address (config.client_address, through RATELIMIT_IP_META_KEY).
sign_in = _too_many_attempts_page(ratelimit(key="ip", rate="30/m", method="POST", block=True)(
    ratelimit(key=sign_in_account_key, rate="10/m", method="POST", block=True)(
        auth_views.LoginView.as_view(authentication_form=SignInForm, redirect_authenticated_user=True)
    )
))
password_reset = _too_many_attempts_page(ratelimit(key="ip", rate="10/m", method="POST", block=True)(
    auth_views.PasswordResetView.as_view(
        form_class=ParlaPasswordResetForm,
        subject_template_name="registration/password_reset_subject.txt",
        email_template_name="registration/password_reset_email.txt",
    )
))

urlpatterns = [
    path("login/", sign_in, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", password_reset, name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
