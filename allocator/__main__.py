from allocator.cli.commands import main

raise SystemExit(main())
