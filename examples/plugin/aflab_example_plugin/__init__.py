"""A minimal aflab plugin (see README.md): nothing here is imported until a config names it."""
