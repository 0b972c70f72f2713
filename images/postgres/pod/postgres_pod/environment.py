"""Typed reads of the pod's environment variables, each refusing a bad value with the variable, the value and what
is allowed."""
import ipaddress
import json
import re
from typing import Any, Mapping, Optional

from .errors import ConfigError


class Environment:
    """Typed reads of environment variables; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def get(self, name: str) -> Optional[str]:
        value = self.environ.get(name, "")
        return None if value == "" else value

    def text(self, name: str, default: str) -> str:
        value = self.get(name)
        return default if value is None else value

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(f"{name} is required")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]+", raw) or not low <= int(raw) <= high:
            raise ConfigError(f"{name}={raw!r} is not valid; expected an integer from {low} to {high}")
        return int(raw)

    def json(self, name: str, default: Any) -> Any:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"{name} is not valid JSON ({e}): {raw!r}") from None

    def cidrs(self, name: str, default: str) -> tuple[str, ...]:
        raw = self.text(name, default)
        cidrs = tuple(c for c in re.split(r"[,\s]+", raw) if c)
        if not cidrs:
            raise ConfigError(f"{name} is empty; expected one or more CIDRs such as 10.244.0.0/16")
        for c in cidrs:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ConfigError(f"{name} contains {c!r}; expected CIDRs such as 10.244.0.0/16 or 127.0.0.1/32") from None
            if "/" not in c:
                raise ConfigError(f"{name} contains {c!r}; expected a CIDR with a prefix length, e.g. {c}/32")
        return cidrs

    def role_name(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if '"' in value or "\n" in value or len(value) > 63:
            raise ConfigError(f"{name}={value!r} is not valid; expected a role name of at most 63 characters without double quotes")
        return value
