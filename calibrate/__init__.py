"""Calibration layer: stylized-fact metrics (`calibrate.facts`), validation reports
(`calibrate.report`) and, on top of them, the method-of-simulated-moments objective.

Facts are pure functions on numpy arrays so the same numbers describe a real window, a
simulated run, or one Optuna trial; reports only load tables and draw what the facts computed.
"""
