"""The command line: ``allocator`` (:mod:`~allocator.cli.commands`), ``allocator run``
(:mod:`~allocator.cli.run`) and the offline demo (:mod:`~allocator.cli.demo`)."""
