"""Subcommands of `ascep`: one module each, found automatically by ascep.cli."""
