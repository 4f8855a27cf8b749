"""The NAS benchmark suite (`alphanas bench nas`).

- `table`: the NAS-Bench-201 table, converted once from its pickle into a checksummed npz.
- `space`: the NAS-Bench-201 cell space: keys, isomorphism classes, mutations, properties.
- `searchers`: random search, regularized evolution, local search, and evolution with the
  property-guided (αNAS) or a property-blind mutation, all under one `Budget`.
- `harness`: arms x seeds, stored in SQLite and resumable; `stats` and `report` summarise.
- `trained`: the trained track on real data.
"""
