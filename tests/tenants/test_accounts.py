"""Dashboard sign-in, sign-out and password reset (Django's auth views, our templates)."""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_in_with_email_opens_the_dashboard(client):
    membership = MembershipFactory(user__username="ana@example.test", user__email="ana@example.test")

    response = client.post("/accounts/login/", {"username": "Ana@Example.test", "password": "pw-for-tests-1"},
                           follow=True)

    assert response.redirect_chain[-1][0] == "/app/speak/"
    assert membership.tenant.name in response.content.decode()


def test_sign_in_returns_to_the_page_asked_for(client):
    membership = MembershipFactory()

    response = client.post("/accounts/login/?next=/app/settings/",
                           {"username": membership.user.email, "password": "pw-for-tests-1", "next": "/app/settings/"})

    assert response["Location"] == "/app/settings/"


def test_sign_in_with_a_wrong_password_says_so(client):
    membership = MembershipFactory()

    response = client.post("/accounts/login/", {"username": membership.user.email, "password": "nope"})

    assert response.status_code == 200
    assert "That email and password do not match an account." in response.content.decode()


def test_sign_in_is_rate_limited_per_account(client, monkeypatch):
    # django-ratelimit counts in fixed one-minute windows; on a slow machine eleven sign-ins
    # can straddle a window's end and start counting again. One window for the whole test.
    monkeypatch.setattr("django_ratelimit.core._get_window", lambda value, period: 1_800_000_000)
    user = UserFactory()
    statuses = [
        client.post("/accounts/login/", {"username": user.email, "password": "wrong"}).status_code
        for _ in range(11)
    ]

    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_sign_out_needs_post_and_ends_the_session():
    client = Client()
    client.force_login(MembershipFactory().user)

    refused = client.get("/accounts/logout/")
    signed_out = client.post("/accounts/logout/")

    assert refused.status_code == 405
    assert signed_out["Location"] == "/accounts/login/"
    assert client.get("/app/speak/").status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    user = MembershipFactory().user

    client.post("/accounts/password-reset/", {"email": user.email})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session marker.
    client.post(form_url, {"new_password1": "A-much-better-one-42", "new_password2": "A-much-better-one-42"})

    user.refresh_from_db()
    assert user.check_password("A-much-better-one-42")


def test_password_reset_reaches_an_invited_member_without_a_password(client):
    user = MembershipFactory(user__password=None).user
    user.set_unusable_password()
    user.save()

    client.post("/accounts/password-reset/", {"email": user.email.upper()})

    assert [message.to for message in mail.outbox] == [[user.email]]


def test_password_reset_of_an_unknown_address_reveals_nothing(client):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.test"}, follow=True)

    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_password_reset_explains_a_mismatch(client):
    user = MembershipFactory().user
    client.post("/accounts/password-reset/", {"email": user.email})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]

    response = client.post(form_url, {"new_password1": "A-much-better-one-42", "new_password2": "different-42"})

    assert "The two password fields didn’t match." in response.content.decode()
