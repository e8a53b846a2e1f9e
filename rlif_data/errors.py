"""Errors raised by rlif-data. Each message names the directory, file, episode or step."""


class RlifDataError(Exception):
    """Base class of every error rlif-data raises on purpose."""


class SchemaError(RlifDataError, ValueError):
    """Data does not match the schema (shape, dtype, missing field)."""


class SchemaMismatchError(SchemaError):
    """An output directory already holds data with a different schema."""


class InvalidActionError(RlifDataError, ValueError):
    """An action contains NaN/inf or has the wrong shape."""


class FormatVersionError(RlifDataError):
    """Data was written in a format version this code cannot read."""


class RecordingError(RlifDataError):
    """Writing an episode failed; earlier episodes are intact."""


class RecordingLockedError(RecordingError):
    """Another live process is writing to the same recording directory."""


class CorruptRecordingError(RlifDataError):
    """A recording directory is damaged beyond what `recover` can repair."""


class UnknownEnvironmentError(RlifDataError, ValueError):
    """An environment id is not registered."""


class UnsafeDataError(RlifDataError, ValueError):
    """Data from elsewhere would write outside its place or run code (file names, feature classes)."""
