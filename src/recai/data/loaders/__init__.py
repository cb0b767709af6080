"""Readers for publishers' raw formats and for users' own tables."""
