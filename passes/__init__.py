"""snncc's built-in passes, one per module (installed as `snncc.passes`).

They are registered through the `snncc.passes` entry-point group in pyproject.toml, the
same way third-party passes are.
"""
