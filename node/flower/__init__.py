"""The node's side of Flower: the SuperNode process, its authentication key and the locally
installed ClientApp.
"""
