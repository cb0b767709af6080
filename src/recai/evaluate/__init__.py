"""Measurement: metrics now; ranking, embedding, conversation and judge evaluations build on them."""
