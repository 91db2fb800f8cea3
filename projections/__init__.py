"""The read side: projectors fold the event log into plain SQL tables in the same file."""
