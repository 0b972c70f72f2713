"""The one error the pod's commands report as `FATAL: <message>` (exit 1)."""


class ConfigError(Exception):
    """A bad input or a state the pod refuses to act in; its message is the whole explanation."""
