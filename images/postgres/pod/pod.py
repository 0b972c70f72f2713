#!/usr/bin/python3
"""The Postgres pod's command line: `pod.py <command>`, run by entrypoint.sh, post-bootstrap.sh, Patroni (the restore
bootstrap), the StatefulSet's preStop hook and people (`kubectl exec`). Without a command it prints the list.

The code is the package next to this file, postgres_pod/ (README.md lists its modules); this path and the command
names are a contract with the StatefulSet (preStop: `pod.py pre-stop`) and the program's outputs
(`pod.py backup-status`).
"""
import sys

from postgres_pod.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
