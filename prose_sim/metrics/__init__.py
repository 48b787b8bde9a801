"""Metrics: text distances, judge scores, verifiable-preference checks."""
