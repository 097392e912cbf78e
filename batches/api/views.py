from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from batches.api.serializers import (
    BatchCreateInputSerializer,
    BatchItemOutputSerializer,
    BatchOutputSerializer,
    WebhookDeliveryOutputSerializer,
)
from batches.export import batch_export_response
from batches.models import Batch
from batches.selectors import batch_get, batch_items, batch_list, batch_webhooks
from batches.services import (
    batch_cancel,
    batch_create,
    batch_items_from_json,
    batch_items_from_upload,
    batch_retry,
)
from synthesis.api.responses import AnyAcceptNegotiation
from tenants.api_base import CreatedAtCursorPagination, TenantScopedViewSet
from tenants.errors import ApplicationError, ErrorCode
from tenants.idempotency import idempotency_parameter, idempotent
from tenants.models import ApiKey
from tenants.services import AuditContext

BATCH_ERRORS = {
    400: OpenApiResponse(description="validation_error, invalid_batch (names the offending line or item), "
                                     "invalid_text, invalid_ssml, unknown_voice, text_too_long, "
                                     "webhook_url_not_allowed"),
    409: OpenApiResponse(description="engine_unavailable, voice_not_ready, idempotency_in_progress"),
    413: OpenApiResponse(description="payload_too_large: the file is over the plan's upload limit"),
    422: OpenApiResponse(description="idempotency_key_reused"),
}


class ExportNotReady(ApplicationError):
    code = ErrorCode.EXPORT_NOT_READY
    status = 409


class FileTooLarge(ApplicationError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    status = 413


def _upload_read(upload, *, limit: int) -> bytes:
    """The file's bytes; FileTooLarge, by the size Django counted on receipt, before reading it."""
    if (upload.size or 0) <= limit and len(data := upload.read(limit + 1)) <= limit:
        return data
    raise FileTooLarge(f"The file is larger than this plan's limit of {limit} bytes.", extra={"limit": limit})


class IndexPagination(CursorPagination):
    ordering = "batch_index"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class BatchViewSet(TenantScopedViewSet):
    queryset = Batch.objects
    required_scope = ApiKey.Scope.BATCHES.value
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    pagination_class = CreatedAtCursorPagination
    serializer_class = BatchOutputSerializer
    lookup_value_regex = r"\d+"
    content_negotiation_class = AnyAcceptNegotiation  # The export is a ZIP.

    @extend_schema(responses=BatchOutputSerializer(many=True), tags=["batches"])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(batch_list(tenant=request.tenant))
        return self.get_paginated_response(BatchOutputSerializer(page, many=True).data)

    @extend_schema(
        request={"application/json": BatchCreateInputSerializer, "multipart/form-data": BatchCreateInputSerializer},
        responses={201: BatchOutputSerializer, **BATCH_ERRORS},
        parameters=[idempotency_parameter()],
        tags=["batches"],
    )
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = BatchCreateInputSerializer(data=request.data)
        if not hasattr(serializer.initial_data, "get"):
            raise ApplicationError("The body must be a JSON object.",
                                   extra={"fields": {"non_field_errors": ["Expected an object."]}})
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        upload = values.get("file")
        if upload is not None:
            data = _upload_read(upload, limit=request.tenant.plan.upload_bytes)
            items = batch_items_from_upload(tenant=request.tenant, data=data, filename=upload.name or "")
            audio = serializer.audio_options_from_form()
        else:
            items = batch_items_from_json(tenant=request.tenant, raw_items=request.data.get("items"))
            audio = serializer.audio_options()
        batch = batch_create(
            tenant=request.tenant,
            items=items,
            voice=values.get("voice", ""),
            audio=audio,
            language=values.get("language"),
            normalize=values["normalize"],
            name=values.get("name", ""),
            webhook_url=values.get("webhook_url", ""),
            source_filename=upload.name if upload is not None else "",
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
            context=AuditContext.from_request(request),
        )
        return Response(BatchOutputSerializer(batch).data, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/batches/{batch.pk}"})

    @extend_schema(responses=BatchOutputSerializer, tags=["batches"])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(BatchOutputSerializer(batch_get(tenant=request.tenant, batch_id=int(pk))).data)

    @extend_schema(responses=BatchItemOutputSerializer(many=True), tags=["batches"])
    @action(detail=True, methods=["get"], url_path="items", pagination_class=IndexPagination)
    def items(self, request: Request, pk: str) -> Response:
        batch = batch_get(tenant=request.tenant, batch_id=int(pk))
        page = self.paginate_queryset(batch_items(tenant=request.tenant, batch=batch))
        return self.get_paginated_response(BatchItemOutputSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: BatchOutputSerializer, 409: OpenApiResponse(
        description="invalid_state: the batch has already ended")}, tags=["batches"])
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str) -> Response:
        batch = batch_get(tenant=request.tenant, batch_id=int(pk))
        batch = batch_cancel(tenant=request.tenant, batch=batch, context=AuditContext.from_request(request))
        return Response(BatchOutputSerializer(batch).data)

    @extend_schema(request=None, responses={200: BatchOutputSerializer, 409: OpenApiResponse(
        description="invalid_state: still running, cancelled, or nothing failed")}, tags=["batches"])
    @action(detail=True, methods=["post"], url_path="retry")
    def retry(self, request: Request, pk: str) -> Response:
        batch = batch_get(tenant=request.tenant, batch_id=int(pk))
        batch = batch_retry(tenant=request.tenant, batch=batch, context=AuditContext.from_request(request))
        return Response(BatchOutputSerializer(batch).data)

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP: audio/ and "
                                                   "manifest.json, manifest.csv"),
                              409: OpenApiResponse(description="export_not_ready")}, tags=["batches"])
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request: Request, pk: str):
        batch = batch_get(tenant=request.tenant, batch_id=int(pk))
        if batch.export_status != Batch.ExportStatus.READY:
            raise ExportNotReady(f"The export is {batch.export_status}; it is written when the batch ends.",
                                 extra={"batch_status": batch.status, "export_status": batch.export_status})
        return batch_export_response(batch)

    @extend_schema(responses=WebhookDeliveryOutputSerializer(many=True), tags=["batches"])
    @action(detail=True, methods=["get"], url_path="webhooks")
    def webhooks(self, request: Request, pk: str) -> Response:
        batch = batch_get(tenant=request.tenant, batch_id=int(pk))
        page = self.paginate_queryset(batch_webhooks(tenant=request.tenant, batch=batch))
        return self.get_paginated_response(WebhookDeliveryOutputSerializer(page, many=True).data)

