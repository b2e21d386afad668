"""Errors a user can cause. The CLI prints them on one line and exits non-zero."""


class VidclsError(Exception):
    """Base class: the message says what was checked, what was found and how to fix it."""


class DatasetError(VidclsError):
    """The dataset folder, archive or its layout is not usable."""


class DecodeError(VidclsError):
    """A video file cannot be opened or decoded. The message starts with the file's path."""


class ConfigError(VidclsError):
    """A flag or setting is invalid, or the model cannot take it."""


class MissingDependency(VidclsError):
    """An optional dependency is needed for this feature and is not installed."""
