"""The headless core: request -> signal -> strength -> decision; the state model; event records (pure)."""
