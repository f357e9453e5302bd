"""Provider events in: each provider's documented format, normalised to ``ProviderEvent``."""
