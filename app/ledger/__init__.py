"""The ledger: keycourier's durable record (SQLite by default, PostgreSQL in production)."""
