"""``python -m newsclf``: the command line (training's, so it is never bundled with a served model)."""

from newsclf.train.cli import main

raise SystemExit(main())
