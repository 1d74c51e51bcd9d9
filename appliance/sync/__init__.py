"""Replication between paired nodes over QUIC: identity, wire format, sessions, the service."""

from appliance.sync.service import SyncService

__all__ = ["SyncService"]
