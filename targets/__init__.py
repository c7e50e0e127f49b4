"""snncc's built-in targets (installed as `snncc.targets`), registered through the
`snncc.targets` entry-point group like third-party targets."""
