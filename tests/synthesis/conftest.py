import pytest


@pytest.fixture
def captured_jobs(monkeypatch):
    """Record the jobs the web tier enqueues instead of sending them to a broker.

    These tests run the actor body themselves; flows through the real broker and worker
    processes are in test_speech_worker.py.
    """
    sent: list[int] = []
    monkeypatch.setattr("synthesis.services._enqueue", lambda job: sent.append(job.pk))
    return lambda: list(sent)
