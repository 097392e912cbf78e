"""Runtime plumbing below every app: what web and worker processes share while they run.

- connection.py: the one Redis connection (or in-memory state in embedded mode);
- events.py: job events, stream readers and cancel marks between workers and web processes;
- presence.py: worker heartbeats (which queues have a worker, which engines are loaded);
- upkeep.py: the periodic upkeep the apps register, its shared lock, broker-loss detection;
- worker.py: the Dramatiq middleware that keeps a worker present and runs the upkeep;
- broker.py: the broker's settings and set-up (apps.py runs it when Django starts).

Nothing here imports an app: the apps register what they need (upkeep tasks, heartbeat
details) in their AppConfig.ready().
"""
