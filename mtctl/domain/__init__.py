"""Pure domain logic: rules, who rings, keys, provisioning payloads. No I/O here."""
