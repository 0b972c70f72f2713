"""gunicorn settings of the image (loaded with `-c`); WEB_CONCURRENCY and GUNICORN_THREADS tune them."""
import os

bind = "0.0.0.0:5000"
# The pod's CPU limit is 500m: two processes keep one busy while the other waits on Postgres, and threads
# serve concurrent requests without the memory of more processes (256Mi limit).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
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
