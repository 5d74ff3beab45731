"""OAuth 2.0 backends, one module per provider (Python Social Auth backends)."""
