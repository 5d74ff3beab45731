"""A small, real OAuth 2.0 authorization server serving a Monzo-shaped API.

Built on django-oauth-toolkit; runs as its own process (``python -m demo_provider``)
for the offline demo and as the loopback provider of the test-suite.
"""
