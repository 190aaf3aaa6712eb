"""The Managed Flink application's entry script: `ascep deploy package` puts it at the zip's root.

The run options name it (python = ascep_job.py) and the folder beside it that holds the job's packages
and their dependencies (pyFiles = lib/), which Flink puts on the Python path of this script and of every
Python worker. Put on the path here too, so that the script also runs as it stands.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
    from flink_jobs.application import main

    sys.exit(main())
