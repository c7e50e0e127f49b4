"""What snncc needs of the machine it runs on: atomic file writes, memory size checks."""
