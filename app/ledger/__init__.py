"""The ledger: keycourier's durable record (SQLite by default, PostgreSQL in production).

Owns the tables (`models`), their migrations, and every write to them: events, deliveries and
their attempts, front-desk flags, provider reports, the console's audit log and sign-in state.
`store.Ledger` is the one writer; the rest of app asks it, never the database.

May import: the foundations (settings, errors, ports) and messages.kinds; the kinds of message
it records are that enum. No adapter, no SDK, nothing else of the domain: the format of what it
stores (a credential's fingerprint) is declared here, and the packages that compute it import it
from here.
"""
