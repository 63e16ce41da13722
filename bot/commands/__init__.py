"""One module per group of command-line tools."""
