"""`python -m app` is the `keycourier` command."""

from app.cli import main

raise SystemExit(main())
