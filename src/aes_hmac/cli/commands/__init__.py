"""One module per subcommand, each defining ``COMMAND`` (its arguments and what it runs)."""
