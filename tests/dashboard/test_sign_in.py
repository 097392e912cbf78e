"""Signing in and out in a real browser."""

import pytest
from playwright.sync_api import expect

from tests.tenants.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_opens_the_page_that_was_asked_for(page):
    MembershipFactory(tenant__name="Acme Audio", user__username="ana@acme.test", user__email="ana@acme.test")

    page.goto("/app/settings/")
    expect(page).to_have_url("/accounts/login/?next=/app/settings/")
    page.get_by_label("Email").fill("ana@acme.test")
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url("/app/settings/")
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Acme Audio")
    assert page.js_errors == []


def test_sign_in_with_a_wrong_password_explains_it(page):
    MembershipFactory(user__username="ana@acme.test", user__email="ana@acme.test")

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("ana@acme.test")
    page.get_by_label("Password").fill("not-it")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("That email and password do not match an account.")


def test_sign_out_ends_the_session(page, sign_in):
    membership = MembershipFactory()
    sign_in(page, membership.user)
    page.goto("/app/speak/")

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url("/accounts/login/")
    page.goto("/app/speak/")
    expect(page).to_have_url("/accounts/login/?next=/app/speak/")
