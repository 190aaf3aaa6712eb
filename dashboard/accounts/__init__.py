"""Accounts of the dashboard: users with a role (the groups "viewer" and "editor"), their API tokens, and the
database they live in (dashboard.settings). dashboard/access.py decides with them who may do what."""
