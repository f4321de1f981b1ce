"""`python -m lmdemo ...`: the command line (see lmdemo.cli)."""

from lmdemo.cli import main

raise SystemExit(main())
