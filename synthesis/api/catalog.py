"""What this installation can speak: its engines (with live worker state) and languages.

Both are global, read-only facts of the installation; any key of the tenant may read them.
The web process never loads a model, so "loaded" comes from the workers' heartbeats.
"""

from dataclasses import asdict, dataclass

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.dramatiq import QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU
from config.runtime.presence import workers_alive
from synthesis.engines.registry import engine_list
from tenants.api_base import TenantScopedAPIView


@dataclass(frozen=True)
class EngineStatus:
    name: str
    model_version: str
    languages: list[str]
    sample_rate: int
    can_clone: bool
    needs_gpu: bool
    licence: dict
    loaded: bool
    workers: int


@dataclass(frozen=True)
class LanguageItem:
    code: str
    engines: list[str]
    voice_count: int


def engine_status_list() -> list[EngineStatus]:
    """Every enabled engine, with how many live workers can run it and whether one has it loaded."""
    workers = workers_alive()
    items = []
    for engine in engine_list():
        info = engine.info
        queue_name = QUEUE_SYNTHESIS_GPU if info.needs_gpu else QUEUE_SYNTHESIS_CPU
        items.append(EngineStatus(
            name=info.name,
            model_version=info.model_version,
            languages=list(info.languages),
            sample_rate=info.sample_rate,
            can_clone=info.can_clone,
            needs_gpu=info.needs_gpu,
            licence=asdict(info.licence),
            loaded=any(info.name in worker.get("engines_loaded", ()) for worker in workers),
            workers=sum(queue_name in worker.get("queues", ()) for worker in workers),
        ))
    return items


def language_list() -> list[LanguageItem]:
    """Each language an enabled engine declares or a catalog voice speaks, sorted by code."""
    engines: dict[str, set[str]] = {}
    voices: dict[str, int] = {}
    for engine in engine_list():
        for code in engine.info.languages:
            engines.setdefault(code, set()).add(engine.name)
        for voice in engine.voices():
            engines.setdefault(voice.language, set()).add(engine.name)
            voices[voice.language] = voices.get(voice.language, 0) + 1
    return [
        LanguageItem(code=code, engines=sorted(names), voice_count=voices.get(code, 0))
        for code, names in sorted(engines.items())
    ]


class LicenceOutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="SPDX-style name, e.g. Apache-2.0 or CC0-1.0.")
    commercial_use = serializers.BooleanField(help_text="False for non-commercial licences (XTTS-v2, MMS-TTS).")
    url = serializers.CharField()


class EngineOutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='Use it as the engine part of a voice id ("piper:...") or as the '
                                           "model on /v1/audio/speech.")
    model_version = serializers.CharField()
    languages = serializers.ListField(child=serializers.CharField(), help_text="BCP-47 codes.")
    sample_rate = serializers.IntegerField(help_text="The engine's native rate in Hz.")
    can_clone = serializers.BooleanField(help_text="Can make a voice from reference recordings.")
    needs_gpu = serializers.BooleanField(help_text="Runs on GPU workers (the synthesis-gpu queue).")
    licence = LicenceOutputSerializer()
    loaded = serializers.BooleanField(help_text="A running worker has the model in memory: no load delay.")
    workers = serializers.IntegerField(help_text="Running workers that consume this engine's queue; with 0, "
                                                 "requests for it wait (or use fallback).")


class EngineListOutputSerializer(serializers.Serializer):
    results = EngineOutputSerializer(many=True)


class LanguageOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text='BCP-47, as the engines and voices name it ("en-US", "de").')
    engines = serializers.ListField(child=serializers.CharField())
    voice_count = serializers.IntegerField(help_text="Catalog voices in this language (your own voices not counted).")


class LanguageListOutputSerializer(serializers.Serializer):
    results = LanguageOutputSerializer(many=True)


class EngineListView(TenantScopedAPIView):
    required_scope = None

    @extend_schema(operation_id="engines_list", responses=EngineListOutputSerializer, tags=["catalog"],
                   description="The engines this installation offers, with their licences and whether a "
                               "running worker can serve them right now.")
    def get(self, request: Request) -> Response:
        return Response(EngineListOutputSerializer({"results": engine_status_list()}).data)


class LanguageListView(TenantScopedAPIView):
    required_scope = None

    @extend_schema(operation_id="languages_list", responses=LanguageListOutputSerializer, tags=["catalog"],
                   description="Each language code with the engines that speak it and its number of catalog voices.")
    def get(self, request: Request) -> Response:
        return Response(LanguageListOutputSerializer({"results": language_list()}).data)
