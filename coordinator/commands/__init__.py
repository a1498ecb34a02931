"""The statistician's commands (``sscjak-coordinator …``): each parses its arguments, calls
the libraries and prints.
"""
