from remixd.cli import main

raise SystemExit(main())
