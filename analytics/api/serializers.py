from rest_framework import serializers

from analytics.selectors import GROUP_BY


class UsageQueryInputSerializer(serializers.Serializer):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=day (days in the tenant's time zone)."""

    def get_fields(self):
        # "from" is a Python keyword, so the fields are declared here rather than as attributes.
        return {
            "from": serializers.DateField(required=False, input_formats=["%Y-%m-%d"]),
            "to": serializers.DateField(required=False, input_formats=["%Y-%m-%d"]),
            "group_by": serializers.ChoiceField(choices=GROUP_BY, required=False, default="day"),
        }


class UsageRowOutputSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The day (YYYY-MM-DD), month (YYYY-MM), voice id, "
                                "engine or API key id; null for jobs made in the dashboard (group_by=key).")
    label = serializers.CharField()
    requests = serializers.IntegerField(help_text="Jobs that produced audio.")
    characters = serializers.IntegerField()
    characters_billed = serializers.IntegerField(help_text="Characters charged (cached audio is free).")
    audio_seconds = serializers.FloatField()
    processing_seconds = serializers.FloatField()
    cached_requests = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Failed jobs (not charged).")
    cache_hit_rate = serializers.FloatField(allow_null=True)


class UsageQuotaOutputSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateTimeField(help_text="When the next period starts.")
    characters_limit = serializers.IntegerField()
    characters_used = serializers.IntegerField()
    characters_held = serializers.IntegerField(help_text="Held by work in progress.")
    characters_remaining = serializers.IntegerField()


class UsageCostOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    price_per_million_characters = serializers.DecimalField(max_digits=12, decimal_places=4)
    characters_billed = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)


class EnrollmentRowOutputSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="As in `rows`, for the same group_by.")
    label = serializers.CharField()
    enrollments = serializers.IntegerField(help_text="Voice enrollments a worker ran, whatever their outcome.")
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    processing_seconds = serializers.FloatField(help_text="Worker time they took, every attempt included.")


class EnrollmentUsageOutputSerializer(serializers.Serializer):
    rows = EnrollmentRowOutputSerializer(many=True)
    totals = EnrollmentRowOutputSerializer()


class UsageReportOutputSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    group_by = serializers.CharField(help_text="day, month, voice, engine or key.")
    rows = UsageRowOutputSerializer(many=True)
    totals = UsageRowOutputSerializer()
    quota = UsageQuotaOutputSerializer()
    cost = UsageCostOutputSerializer(allow_null=True, help_text="Null when the plan has no price.")
    enrollments = EnrollmentUsageOutputSerializer(
        help_text="Voice enrollments (cloning or matching a voice from recordings): counted in processing "
                  "seconds, never in characters, and not in `rows` or `totals`.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        return fields
