"""The store: every SQL statement, connection and migration of mtctl."""
