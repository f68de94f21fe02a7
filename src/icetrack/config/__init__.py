"""Configuration: the JSON-schema validation, the glacier table, per-glacier overrides
(:mod:`.load`) and the cross-field and local-file checks run before any job
(:mod:`.checks`). Every problem is a :class:`ConfigError` with one line naming the field,
the value and what was expected."""

from icetrack.config.errors import ConfigError
from icetrack.config.load import effective, load_glacier_table, selected_glaciers, validate

__all__ = ["ConfigError", "effective", "load_glacier_table", "selected_glaciers", "validate"]
