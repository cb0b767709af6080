"""Hostile-input suites: each test is a finding of the hardening issue, or one of its kind."""
