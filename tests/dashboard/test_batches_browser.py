"""The Batches pages in a real browser: a batch made from pasted lines runs on real worker
processes while the page's progress bar follows it to 100 %, then its ZIP is downloaded; a
batch is cancelled from its page."""

import io
import json
import os
import zipfile

import pytest
from playwright.sync_api import expect

from batches.models import Batch
from synthesis.models import SynthesisJob
from tests.tenants.factories import MembershipFactory
from voices.audio_checks.sniff import sniff_container

pytestmark = pytest.mark.django_db(transaction=True)

LINES = ["Welcome to the course.", "This is the second lesson.", "Thank you for listening."]


@pytest.fixture(scope="module")
def export_worker(django_db_setup, tmp_path_factory):
    """A real `rundramatiq` process on the exports queue (cpu_worker does not consume it),
    which writes a finished batch's ZIP."""
    from django.conf import settings

    from tests.helpers import start_manage, stop
    from tests.synthesis.conftest import _wait_for_presence

    database = settings.DATABASES["default"]
    log_path = tmp_path_factory.mktemp("export-worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    process = start_manage("rundramatiq", "--processes", "1", "--threads", "1", "--queues", "exports",
                           env=env, log_path=log_path)
    process.log_path = log_path
    _wait_for_presence("exports", process)
    yield process
    stop(process)


def _start_batch(page, membership, lines: list[str], name: str) -> Batch:
    page.goto("/app/batches/")
    expect(page.locator("#batches-empty")).to_contain_text("No batches yet")
    page.get_by_role("link", name="New batch").click()
    page.get_by_label("Lines to speak").fill("\n".join(lines))
    expect(page.locator("#line-count")).to_have_text(f"{len(lines)} items")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Format").select_option("mp3")
    page.get_by_role("button", name="Start batch").click()
    expect(page.locator(".messages")).to_contain_text(f"The batch of {len(lines)} items is queued.")
    return Batch.objects.for_tenant(membership.tenant).get(name=name)


def test_cancel_a_batch_from_its_page(page, sign_in):
    # No worker runs in this test, so every item is still queued when the batch is cancelled.
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    lines = [f"Line number {n} of a long batch." for n in range(1, 21)]
    batch = _start_batch(page, membership, lines, "To be cancelled")
    expect(page.locator("#progress-text")).to_have_text("0 of 20 items")

    page.get_by_role("button", name="Cancel batch").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel batch").click()

    expect(page.locator(".messages")).to_contain_text("The batch is cancelled.")
    expect(page.locator("#batch-status")).to_have_text("Cancelled")
    expect(page.get_by_role("progressbar", name="Batch progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#cancel-form")).to_be_hidden()
    expect(page.locator("tr[data-item-status=cancelled]")).to_have_count(20)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.CANCELLED and batch.cancel_requested_at is not None
    assert set(SynthesisJob.objects.for_tenant(membership.tenant).values_list("status", flat=True)) == {"cancelled"}
    assert page.js_errors == []


def test_run_a_small_batch_to_completion_and_download_the_zip(page, sign_in, cpu_worker, export_worker):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)

    batch = _start_batch(page, membership, LINES, "Three lines")
    bar = page.get_by_role("progressbar", name="Batch progress")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=180_000)
    expect(page.locator("#progress-percent")).to_have_text("100 %")
    expect(page.locator("#progress-text")).to_have_text("3 of 3 items")
    expect(page.locator("#batch-status")).to_have_text("Completed")
    download_link = page.get_by_role("link", name="Download ZIP")
    expect(download_link).to_be_visible(timeout=120_000)
    with page.expect_download() as info:
        download_link.click()
    archive = zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read()))
    page.locator("tr[data-item-status=succeeded]").first.get_by_role("button", name="Play item 1").click()
    page.wait_for_function("document.getElementById('item-audio').currentTime > 0", timeout=30_000)

    assert info.value.suggested_filename == f"parla-batch-{batch.pk}.zip"
    assert sorted(archive.namelist()) == ["audio/0001.mp3", "audio/0002.mp3", "audio/0003.mp3",
                                          "manifest.csv", "manifest.json"]
    manifest = json.loads(archive.read("manifest.json"))
    assert [item["text"] for item in manifest["items"]] == LINES
    assert [sniff_container(archive.read(f"audio/000{n}.mp3")) for n in (1, 2, 3)] == ["mp3"] * 3
    expect(page.locator("tr[data-item-status=succeeded]")).to_have_count(3)
    expect(page.locator("#cancel-form")).to_be_hidden()
    batch.refresh_from_db()
    assert (batch.status, batch.export_status) == ("completed", "ready")
    assert page.js_errors == []


def test_batch_pages_fit_a_phone_screen_in_dark_mode(page, sign_in):
    from tests.batches.factories import BatchFactory
    from tests.synthesis.factories import SynthesisJobFactory

    membership = MembershipFactory(role="member")
    batch = BatchFactory(tenant=membership.tenant, name="Phone check", items_total=2, status=Batch.Status.RUNNING)
    for index, status in enumerate(["succeeded", "queued"]):
        SynthesisJobFactory(tenant=membership.tenant, batch=batch, batch_index=index, mode="batch", status=status,
                            filename=f"{index + 1:04d}.wav", text=f"Item {index + 1} of the phone check.")
    sign_in(page, membership.user)
    page.set_viewport_size({"width": 375, "height": 812})
    page.emulate_media(color_scheme="dark")

    widths = {}
    for url in ("/app/batches/", "/app/batches/new", f"/app/batches/{batch.pk}/"):
        page.goto(url)
        widths[url] = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    assert widths == dict.fromkeys(widths, 0)
    expect(page.get_by_role("progressbar", name="Batch progress")).to_have_attribute("aria-valuenow", "50")
    expect(page.locator("tr[data-item-status=succeeded]").get_by_role("link", name="Download item 1")).to_be_visible()
    assert page.js_errors == []
