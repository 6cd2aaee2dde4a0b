"""newsmon: a streaming news monitor and alerting service."""

__version__ = "0.1.0"
