"""Planned; see the issues."""
