"""Results: what campaigns, variants and lifecycle stages achieve, and the statistics to read an
experiment by."""
