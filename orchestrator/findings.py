"""A finding of `ruche audit`: the rule broken, the object, the evidence and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    rule: str
    object: str
    evidence: str
    fix: str
