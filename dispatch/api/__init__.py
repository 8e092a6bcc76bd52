"""The dispatch domain's JSON API (nested under ``/api/v1`` by the application factory):
tickets and their transitions, the callback queues, the console's helpers, and the time
limits and working-day calendar."""
