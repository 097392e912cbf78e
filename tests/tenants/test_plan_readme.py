"""The README's table of default plans says what tenants.plans creates."""

import re
from pathlib import Path

from tenants.plans import DEFAULT_PLANS, MB

README = Path(__file__).resolve().parents[2] / "README.md"
FIELDS = ["monthly_characters", "requests_per_minute", "concurrent_jobs", "voices", "cloned_voices",
          "batch_items", "upload_bytes", "request_characters", "max_audio_seconds_per_request",
          "enrollments_per_day"]


def _table() -> dict[str, list[int]]:
    section = README.read_text().split("### Plans", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_]+)`[^|]* \|(.*)\|$", line)
        if match:
            cells = [cell.strip() for cell in match.group(2).split("|")]
            rows[match.group(1)] = [int(re.sub(r"[^\d]", "", cell)) * (MB if cell.endswith("MB") else 1)
                                    for cell in cells]
    return rows


def test_readme_plan_table_matches_the_default_plans():
    table = _table()

    assert list(table) == FIELDS
    for column, plan in enumerate(DEFAULT_PLANS):
        assert [table[field][column] for field in FIELDS] == list(plan[2:]), plan[0]
