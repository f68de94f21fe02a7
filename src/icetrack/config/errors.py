"""Exceptions shared across the package, in a module with no dependencies, so that any
module (network code run in every rule, say) can raise them without importing the config
machinery (jsonschema, YAML) into every rule's environment."""


class ConfigError(ValueError):
    """A configuration problem; the message names the field, the value and what was expected."""
