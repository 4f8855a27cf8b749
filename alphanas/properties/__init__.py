"""Properties of (sub-)graphs: shape, depth, mixing, resources; specs and verification."""
