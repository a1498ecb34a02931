"""From validated rows to the one integer vector a node contributes: the derivation of
changes, then the summary.
"""
