"""A synthetic cohort for demos, tests and benchmarks: the sampling model, the file writers
and the bundled demo centres.
"""
