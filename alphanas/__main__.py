"""`python -m alphanas`: the console script."""

from alphanas.cli import main

raise SystemExit(main())
