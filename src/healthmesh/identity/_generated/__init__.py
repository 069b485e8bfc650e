"""Generated tables (see scripts/linkage_gen_divisions.py); data only."""
