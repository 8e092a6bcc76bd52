"""Live boards, monthly rankings and exports (issues 5 and 6). Depends on ``dispatch``."""
