"""Analyses that sit on top of training: a model's value calibration (`calibration`) and
the multi-seed comparison of training runs (`compare`). The CLI commands of the same
names are thin wrappers around them."""
