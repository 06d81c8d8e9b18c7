"""Catalogues (warning signs, side effects, rule thresholds) and the demo-cohort generator."""
