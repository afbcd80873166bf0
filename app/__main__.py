"""`python -m app` is the `keycourier` command."""

from app.ops.cli import main

raise SystemExit(main())
