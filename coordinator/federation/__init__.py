"""Running the secure round: certificates, the SuperLink, the ServerApp, the round itself,
and federations on one machine (processes or in process).
"""
