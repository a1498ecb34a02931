"""What stands between a centre's summary and the network: approvals, the disclosure
policy, the release epoch, the ledger, the audit log and the request handler.
"""
