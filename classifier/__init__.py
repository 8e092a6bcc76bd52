"""Complaint text → category, request type, urgency, area and handling unit (issue 3).

Plain Python: no Flask or database imports; ``hotline`` calls it at intake.
"""
