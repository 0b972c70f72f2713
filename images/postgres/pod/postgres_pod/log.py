"""The pod's log lines: stderr, which the container runtime collects beside Patroni's."""
import os
import sys

from .timestamps import utc


def log(message: str) -> None:
    sys.stderr.write(f"{utc()} pod.py {os.environ.get('POD_NAME', '?')}: {message}\n")
    sys.stderr.flush()
