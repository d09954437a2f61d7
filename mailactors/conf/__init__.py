"""Configuration: YAML files loaded into frozen dataclasses."""
