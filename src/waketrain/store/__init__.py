"""The artifact registry: on-disk layout, database models and the clip store."""
