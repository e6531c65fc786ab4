"""The dispatch engine: the sans-I/O core (``dispatch.core``) and the service around it."""
