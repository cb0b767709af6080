"""The embedded ``demo`` dataset: 300 well-known films and a simulated viewing log."""
