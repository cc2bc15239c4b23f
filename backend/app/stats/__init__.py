"""Statistics: daily rollups of the call log (kept as logs are written) and the dashboard queries."""
