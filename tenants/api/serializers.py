from rest_framework import serializers

from tenants.models import ApiKey, Plan


class PlanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["slug", "name", *Plan.LIMIT_FIELDS]
        read_only_fields = fields


class UsageOutputSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateTimeField()
    characters_limit = serializers.IntegerField()
    characters_used = serializers.IntegerField()
    characters_reserved = serializers.IntegerField(help_text="Held by work in progress.")
    characters_remaining = serializers.IntegerField()
    concurrent_jobs_limit = serializers.IntegerField()
    jobs_in_flight = serializers.IntegerField()


class TenantOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    status = serializers.CharField()
    time_zone = serializers.CharField()
    plan = PlanOutputSerializer()
    limits = serializers.DictField(child=serializers.IntegerField())
    usage = UsageOutputSerializer()


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, trim_whitespace=True)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices),
        required=False,
        allow_empty=False,
        help_text="Defaults to every scope the caller holds.",
    )


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]
        read_only_fields = fields


class WebhookSettingsOutputSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Default receiver of batch events; empty for none.")
    secret = serializers.CharField(help_text="Signs every event (X-Parla-Signature, HMAC-SHA256).")
    signature_header = serializers.CharField()


class WebhookSettingsInputSerializer(serializers.Serializer):
    url = serializers.URLField(allow_blank=True, max_length=2000)
