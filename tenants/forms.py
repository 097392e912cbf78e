"""Dashboard forms: they parse input only; the views hand it to services."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm

from tenants.models import ApiKey, Membership


class SignInForm(AuthenticationForm):
    """Dashboard users sign in with their email address (it is also their username)."""

    username = forms.CharField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. Passwords are case-sensitive.",
    }

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        # Accounts made by the services store their email lower-cased as the username.
        return username.lower() if "@" in username else username


class ParlaPasswordResetForm(PasswordResetForm):
    """Also reaches members who were invited and have not chosen a password yet.

    Django skips users with unusable passwords because they may sign in elsewhere; Parla
    accounts only sign in here, and invited members start without a password.
    """

    def get_users(self, email):
        users = get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        return (user for user in users if user.email and user.email.lower() == email.lower())


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Where the key will be used, e.g. “production web app”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "production-web"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[scope.value for scope in ApiKey.Scope if scope not in (ApiKey.Scope.KEYS, ApiKey.Scope.ADMIN)],
        error_messages={"required": "Choose at least one scope."},
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name


class MemberAddForm(forms.Form):
    # An account's username is its email address, and usernames hold at most 150 characters.
    email = forms.EmailField(
        label="Email address", max_length=150,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@company.com"}),
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, actor_role: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # SECURITY: only owners can make owners; an admin cannot raise anyone above admin.
        if actor_role != Membership.Role.OWNER:
            self.fields["role"].choices = [
                choice for choice in Membership.Role.choices if choice[0] != Membership.Role.OWNER
            ]


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Batch events are POSTed here, signed with the secret below. Leave empty to switch off.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/parla/webhooks"}),
    )


class InvitationAccountForm(SetPasswordForm):
    """The password of the account an invited person creates while accepting (Django's rules)."""

    def __init__(self, *args, email: str, **kwargs):
        # The password validators compare the password with the account it is for.
        super().__init__(get_user_model()(username=email, email=email), *args, **kwargs)
        self.fields["new_password1"].label = "Choose a password"
        self.fields["new_password2"].label = "The same password again"
