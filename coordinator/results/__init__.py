"""From the pooled summary vector to the results file: the consistency checks, the
statistics per cell and the terminal table.
"""
