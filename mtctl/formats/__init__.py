"""File formats mtctl reads and writes: the declarative config file (apply/export)."""
