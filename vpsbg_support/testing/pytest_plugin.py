"""Pytest plugin (entry point ``pytest11``): fixtures that run a ``FakeVPSBG`` for a test."""
