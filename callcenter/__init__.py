"""Duty-line monitoring for government duty rooms, fed by the Asterisk Manager Interface."""

__version__ = "0.1.0"
