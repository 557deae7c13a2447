"""Touchpoint: a self-hosted website personalisation and popup server."""

from __future__ import annotations

__version__ = "0.1.0"
