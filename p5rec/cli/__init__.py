"""The `p5rec` command line: `p5rec.cli.main.main([...])` runs a subcommand in-process.

One module per subcommand; nothing is exported here (a `main` attribute would clash with the module).
"""

__all__: list[str] = []
