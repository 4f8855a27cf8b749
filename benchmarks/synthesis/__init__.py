"""Synthesis benchmarks: specs read off (and perturbed from) blocks of the model zoo."""
