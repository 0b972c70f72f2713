"""The code the Postgres pod runs (pod.py is its command line; README.md next to this package lists the commands)."""
