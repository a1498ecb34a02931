"""Reading a centre's files: finding each table, one reader per format, every problem
located by file, row and column.
"""
