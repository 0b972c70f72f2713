"""gunicorn settings of the image (loaded with `-c`); WEB_CONCURRENCY and GUNICORN_THREADS tune them.

Measured in docs/app.md ("Throughput"): a POST costs about 0.6 to 1 ms of CPU in all (gunicorn, Flask, one
round trip), so a worker's threads mostly wait on PostgreSQL; gthread keeps keep-alive connections from the
ingress, where the sync worker closes each one.
"""
import gc
import os

# PORT: the program sets it from apiPort (default 5000); the Service, probes and containerPort follow.
bind = f"0.0.0.0:{int(os.environ.get('PORT', '5000'))}"
# Two processes for the pod's 500m CPU: one GIL each, and one keeps serving while the other is replaced. Threads
# serve concurrent requests (one database connection each, DB_POOL_SIZE) without the memory of more processes.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# The app is imported once, in the master, and the workers share its pages: 27 MB of PSS per worker instead of
# 52 MB (256Mi limit). create_app() opens no connection, so none is shared across the fork.
preload_app = True
# A worker silent for 30 s is killed and replaced.
timeout = 30
# SIGTERM lets in-flight requests finish for up to 20 s, within Kubernetes' 30 s grace period.
graceful_timeout = 20
keepalive = 5
# The heartbeat file lives in memory: the image's filesystem is not written to.
worker_tmp_dir = "/dev/shm"
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


def when_ready(server) -> None:
    # The preloaded app's objects move out of the collector's reach, so its passes do not write to (and copy)
    # the pages the workers share.
    gc.freeze()
