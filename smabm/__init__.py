"""The `smabm` command line: the one thin face allowed to import every layer (DESIGN.md)."""
