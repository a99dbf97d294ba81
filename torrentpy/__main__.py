import gc

# The start-up's imports make thousands of objects the collector would walk several times over: it is
# paused from here (cli.main says until when).
gc.disable()

from torrentpy.cli import main  # noqa: E402

raise SystemExit(main())
