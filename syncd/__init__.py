"""syncd: keeps an application's user directory in step with CSV exports."""

__version__ = "0.1.0"
