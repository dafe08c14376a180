"""Blob stores: where image bytes live. base.py says what every store promises."""
