"""Pure duty rules: calls and device events in, violations out. No I/O."""
