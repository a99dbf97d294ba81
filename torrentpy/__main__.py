from torrentpy.cli import main

raise SystemExit(main())
