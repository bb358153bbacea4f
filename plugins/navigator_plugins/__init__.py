"""First-party navigator plugins (registered through the `navigator.plugins` entry-point group)."""
