"""ASCEP shell: settings, contracts shared by ingestion and the job, the CLI and the embedded stack."""
__version__ = "0.1.0"
