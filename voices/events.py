"""What voices announces to the layers above it; they subscribe in their AppConfig.ready().

    # analytics/apps.py
    from voices.events import on_enrollment_finished
    on_enrollment_finished(lambda enrollment: enrollment_usage_record(...))

Voices never imports its listeners: the usage ledger (analytics) learns of enrollments here.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voices.models import VoiceEnrollment

EnrollmentListener = Callable[["VoiceEnrollment"], None]

_enrollment_finished: list[EnrollmentListener] = []


def on_enrollment_finished(listener: EnrollmentListener) -> EnrollmentListener:
    """Call `listener(enrollment)` each time an enrollment ends (any final status).

    NOTE: listeners run inside the transaction that ends the enrollment, with its row locked,
    so what they write commits or rolls back with that end: a redelivered message or a
    recovered enrollment can never end it, nor announce it, twice.
    """
    _enrollment_finished.append(listener)
    return listener


def enrollment_finished_announce(enrollment: "VoiceEnrollment") -> None:
    for listener in _enrollment_finished:
        listener(enrollment)
