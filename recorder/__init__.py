"""Recording layer: the append-only raw event log, live clients and importers.

Knows nothing else in the project (DESIGN.md): every other layer reads what this one wrote.
"""
