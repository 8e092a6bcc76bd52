"""The boards, rankings and analysis for programs, under /api/v1: one module per subject."""
