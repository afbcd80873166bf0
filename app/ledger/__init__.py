"""The ledger: keycourier's durable record (SQLite by default, PostgreSQL in production).

Owns the tables (`models`), their migrations, and every write to them: events, deliveries and
their attempts, front-desk flags, provider reports, the console's audit log and sign-in state.
`store.Ledger` is the one writer; the rest of app asks it, never the database.

May import: only the foundations (settings, errors, ports); it uses errors. No adapter, no SDK,
nothing of the domain: the format of what it stores (a credential's fingerprint) is declared
here, and the packages that compute it import it from here.
"""
