"""The ticket workflow: state machine, operations, time limits, routing, access rules."""
