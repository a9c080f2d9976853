"""A stand-in framework."""


def compute(x):
    return x * 10.0
