"""Pure models (sentiment, regimes): functions and classes on arrays and texts.

Nothing here imports from the rest of the project, so every stage can reuse them.
"""
