from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from synthesis.api.responses import AnyAcceptNegotiation, speech_result_response
from synthesis.selectors import speech_voice_resolve
from tenants.api_base import ResultsEnvelope, TenantScopedViewSet
from tenants.errors import ApplicationError
from tenants.models import ApiKey
from tenants.services import AuditContext
from voices.api.serializers import (
    VoiceCreateInputSerializer,
    VoiceListOutputSerializer,
    VoiceProfileOutputSerializer,
    VoiceReferenceOutputSerializer,
    VoiceReferencesInputSerializer,
    VoiceUpdateInputSerializer,
)
from voices.models import VoiceProfile
from voices.previews import PREVIEW_FORMATS, preview_format_check, voice_preview_get_or_create
from voices.selectors import voice_list, voice_profile_get, voice_reference_get
from voices.services import (
    voice_profile_create,
    voice_profile_delete,
    voice_profile_update,
    voice_reference_add,
    voice_reference_delete,
    voice_references_read,
)

_UPDATABLE = {"name", "description", "language", "gender", "age"}
UPLOAD_ERRORS = {
    400: OpenApiResponse(description="validation_error, audio_corrupt, audio_too_short, audio_too_long"),
    403: OpenApiResponse(description="plan_limit_reached (voices, cloned voices, recordings per voice, or "
                                     "enrollments a day: extra.limit_name), insufficient_scope"),
    409: OpenApiResponse(description="engine_unavailable: no engine here can clone or match, or the one named "
                                     "is not enabled"),
    413: OpenApiResponse(description="audio_too_large: over the plan's upload limit"),
    415: OpenApiResponse(description="unsupported_audio: not a WAV, FLAC, MP3, OGG or M4A recording"),
    429: OpenApiResponse(description="concurrency_limit_exceeded: enrollment takes one of the plan's concurrent "
                                     "jobs and none is free (Retry-After)"),
}


class VoiceViewSet(TenantScopedViewSet):
    queryset = VoiceProfile.objects  # Scoped by the base class; reads go through selectors.
    required_scope = ApiKey.Scope.VOICES.value
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    content_negotiation_class = AnyAcceptNegotiation  # Previews are audio.
    pagination_class = ResultsEnvelope
    lookup_value_regex = r"\d+"
    serializer_class = VoiceProfileOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("language", str, description="BCP-47 prefix, e.g. en or en-US"),
            OpenApiParameter("engine", str),
            OpenApiParameter("kind", str, enum=["catalog", "cloned", "matched"]),
        ],
        responses=VoiceListOutputSerializer(many=True),
        tags=["voices"],
    )
    def list(self, request: Request) -> Response:
        filters = {key: request.query_params.get(key, "") for key in ("language", "engine", "kind")}
        if "kind" in request.query_params and filters["kind"] not in VoiceProfile.Kind.values:
            raise ApplicationError(
                f"kind must be one of {', '.join(VoiceProfile.Kind.values)}.",
                extra={"fields": {"kind": ["Invalid choice."]}},
            )
        items = self.paginate_queryset([asdict(i) for i in voice_list(tenant=request.tenant, filters=filters)])
        return self.get_paginated_response(VoiceListOutputSerializer(items, many=True).data)

    @extend_schema(request={"multipart/form-data": VoiceCreateInputSerializer},
                   responses={201: VoiceProfileOutputSerializer, **UPLOAD_ERRORS}, tags=["voices"])
    def create(self, request: Request) -> Response:
        serializer = VoiceCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        files = request.FILES.getlist("references")
        data.pop("references", None)
        profile = voice_profile_create(
            tenant=request.tenant,
            uploads=voice_references_read(tenant=request.tenant, files=files),
            context=AuditContext.from_request(request),
            **data,
        )
        return Response(VoiceProfileOutputSerializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=VoiceProfileOutputSerializer, tags=["voices"])
    def retrieve(self, request: Request, pk: str) -> Response:
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        return Response(VoiceProfileOutputSerializer(profile).data)

    @extend_schema(request=VoiceUpdateInputSerializer, responses=VoiceProfileOutputSerializer, tags=["voices"])
    def partial_update(self, request: Request, pk: str) -> Response:
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        if read_only := sorted(set(request.data) - _UPDATABLE):
            raise ApplicationError(
                "These fields cannot be changed.", extra={"fields": {name: ["Read-only."] for name in read_only}}
            )
        serializer = VoiceUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        profile = voice_profile_update(
            tenant=request.tenant, profile=profile, context=AuditContext.from_request(request),
            **serializer.validated_data,
        )
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=profile.pk)
        return Response(VoiceProfileOutputSerializer(profile).data)

    @extend_schema(responses={204: None}, tags=["voices"])
    def destroy(self, request: Request, pk: str) -> Response:
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        voice_profile_delete(tenant=request.tenant, profile=profile, context=AuditContext.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"multipart/form-data": VoiceReferencesInputSerializer},
                   responses={201: VoiceReferenceOutputSerializer(many=True), **UPLOAD_ERRORS}, tags=["voices"])
    @action(detail=True, methods=["post"], url_path="references")
    def references(self, request: Request, pk: str) -> Response:
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        serializer = VoiceReferencesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        references = voice_reference_add(
            tenant=request.tenant,
            profile=profile,
            uploads=voice_references_read(tenant=request.tenant, files=request.FILES.getlist("references"),
                                          profile=profile),
            context=AuditContext.from_request(request),
        )
        return Response(VoiceReferenceOutputSerializer(references, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, tags=["voices"])
    @action(detail=True, methods=["delete"], url_path=r"references/(?P<reference_id>\d+)")
    def reference_delete(self, request: Request, pk: str, reference_id: str) -> Response:
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        reference = voice_reference_get(tenant=request.tenant, profile=profile, reference_id=int(reference_id))
        voice_reference_delete(tenant=request.tenant, reference=reference, context=AuditContext.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=[*PREVIEW_FORMATS], description="Default mp3.")],
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="A short sample of the voice."),
                   202: OpenApiResponse(description="The sample is still being made (the job)."),
                   409: OpenApiResponse(description="voice_not_ready, engine_unavailable")},
        tags=["voices"],
    )
    @action(detail=True, methods=["get"], url_path="preview")
    def preview(self, request: Request, pk: str):
        """A short sample of the voice, made once per enrollment and format and then served as is."""
        profile = voice_profile_get(tenant=request.tenant, voice_profile_id=int(pk))
        audio_format = preview_format_check(request.query_params.get("format", "mp3"))
        voice = speech_voice_resolve(tenant=request.tenant, voice=str(profile.pk))
        job = voice_preview_get_or_create(
            tenant=request.tenant, voice=voice, audio_format=audio_format,
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
        )
        return speech_result_response(job)
