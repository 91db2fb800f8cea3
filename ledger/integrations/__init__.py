"""Adapters that plug the ledger into the tools agent builders already use (each an optional extra)."""
