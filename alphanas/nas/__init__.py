"""Property-guided neural architecture search: mutation by synthesis, evolution, training with
JAX/Flax/optax, a resumable SQLite result store, export of candidates.

Modules: `data` (datasets and splits), `train` (jit training of a graph), `store` (SQLite
results, resume), `mutate` (property-guided and random mutation, fingerprints), `export`
(standalone Flax source + parameters), `evolve` (the search loop, selection, Ray workers).
"""
