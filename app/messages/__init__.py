"""The messages ops edit: the templates folder and everything that reads it.

Owns the kinds of message and what each is (`kinds`: the values the ledger stores and the
template folders' names), reading the folder into an immutable snapshot (`files`, `catalog`), the
sandbox templates run in (`sandbox`, and `bounds`: how big an operation's result would be,
worked out before it runs), rendering (`rendering`), hot reload with a safety net (`live`), the
variables a template sees (`variables`), the per-hotel settings in properties.toml
(`properties`), SMS segment counts, and the `templates check`, `preview` and `configmap` work
behind the command line.

May import: observability, and the foundations (settings, errors, ports).
"""
