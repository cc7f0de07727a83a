"""How things look on the wire, for both WebSockets and the HTTP API: the
JSON codec, the domain errors and their codes, the shared protocol pieces,
the schema checker and the DRF plumbing. Imports nothing of the apps."""
