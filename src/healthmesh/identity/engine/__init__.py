"""Plaintext linkage: comparisons, Fellegi-Sunter by EM, assignment and clustering."""
