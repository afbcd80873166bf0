"""The ledger: keycourier's durable record (SQLite by default, PostgreSQL in production).

Owns the tables (`models`), their migrations, and every write to them: events, deliveries and
their attempts, front-desk flags, provider reports, the console's audit log and sign-in state.
`store.Ledger` is the one writer; the rest of app asks it, never the database.

May import: errors, messages.kinds (the kinds of message it records), and the plain helpers it
stores the results of. Imports no adapter or SDK.
"""
