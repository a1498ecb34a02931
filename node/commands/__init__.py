"""The node's commands (``sscjak-node …``): each parses its arguments, calls the libraries
and prints.
"""
