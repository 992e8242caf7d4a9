"""The subcommands of the ``callcenter`` command, one module each."""
