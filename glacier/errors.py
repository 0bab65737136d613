"""User-facing errors: the CLI prints them as one clear message and exits non-zero.

Raise these for bad input (a missing file, a wrong value, an unknown key); let real bugs
surface as ordinary exceptions with their traceback.
"""


class GlacierError(Exception):
    """An error the user can fix: say which file or key, what is wrong and what to do."""


class ConfigError(GlacierError):
    """A configuration file or override is invalid."""


class DataError(GlacierError):
    """Input data is missing, malformed or inconsistent."""


class ModelError(GlacierError):
    """A model folder, ensemble or checkpoint cannot be used."""


class HubError(GlacierError):
    """A Hugging Face Hub operation failed."""
