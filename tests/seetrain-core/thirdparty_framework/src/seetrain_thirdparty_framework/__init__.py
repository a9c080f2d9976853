"""A stand-in framework."""
