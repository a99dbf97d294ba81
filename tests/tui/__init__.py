"""Tests of the terminal dashboard, peer-id decoding and progress reporters."""
