import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from synthesis.audio import FORMATS, AudioOptions
from synthesis.engines.registry import DEFAULT_ENGINE, catalog_voices
from synthesis.render import RenderRequest, render
from tenants.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Speak text (or SSML) to an audio file on this host, through the same front-end, "
        "engine and pipeline as the API. Not billed: an operator's tool."
    )

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="?", help="Text to speak (or use --ssml).")
        parser.add_argument("--ssml", help="An SSML document instead of text.")
        parser.add_argument("--voice", default="", help="Catalog voice id; --list-voices shows them.")
        parser.add_argument("--format", default="wav", choices=FORMATS)
        parser.add_argument("--sample-rate", type=int)
        parser.add_argument("--speed", type=float, default=1.0)
        parser.add_argument("--pitch", type=float, default=0.0, help="Semitones, -12 to 12.")
        parser.add_argument("-o", "--output", type=Path, help="Output file (default: speech.<format>).")
        parser.add_argument("--list-voices", action="store_true")

    def handle(self, *args, **options):
        if options["list_voices"]:
            for voice in catalog_voices():
                use = "commercial use allowed" if voice.licence.commercial_use else "NON-COMMERCIAL"
                self.stdout.write(f"{voice.id}\t{voice.language}\t{voice.licence.name} ({use})")
            return
        if not options["text"] and not options["ssml"]:
            raise CommandError("Give the text to speak, or --ssml.")
        voice = options["voice"] or next(v.id for v in catalog_voices() if v.engine == DEFAULT_ENGINE)
        output = options["output"] or Path(f"speech.{options['format']}")
        try:
            audio = AudioOptions.from_request({
                "format": options["format"], "sample_rate": options["sample_rate"],
                "speed": options["speed"], "pitch_semitones": options["pitch"],
            })
            result = render(
                tenant=None,
                request=RenderRequest(voice_id=voice, text=options["text"], ssml=options["ssml"], audio=audio),
                use_cache=False,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        if isinstance(result.data, Path):  # a long render, already on disk
            shutil.move(result.data, output)
        else:
            output.write_bytes(result.data)
        self.stdout.write(
            f"Wrote {output} ({result.duration_seconds:.1f} s, {result.content_type}, voice {voice}, "
            f"{result.billed_characters} characters)"
        )
