import factory
from factory.django import DjangoModelFactory

from tenants.models import ApiKey, Membership, Plan, Tenant, User
from tenants.services import CreatedApiKey, api_key_create


class PlanFactory(DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    monthly_characters = 100_000
    requests_per_minute = 1_000
    concurrent_jobs = 4
    voices = 10
    cloned_voices = 2
    batch_items = 100
    upload_bytes = 10 * 1024 * 1024
    request_characters = 10_000


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    plan = factory.SubFactory(PlanFactory)
    webhook_secret = factory.Faker("pystr", min_chars=32, max_chars=32)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("pw-for-tests-1")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class ApiKeyFactory:
    """Keys come from the real service so hashing and prefixes are the product's own."""

    _n = 0

    @classmethod
    def create_with_plaintext(cls, *, tenant: Tenant, scopes=None, name=None) -> CreatedApiKey:
        cls._n += 1
        return api_key_create(tenant=tenant, actor=None, name=name or f"key-{cls._n}", scopes=scopes)

    @classmethod
    def create(cls, **kwargs) -> ApiKey:
        return cls.create_with_plaintext(**kwargs).api_key
