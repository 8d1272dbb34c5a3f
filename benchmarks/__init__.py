"""Benchmarks: declarative (method name -> factory; one dataclass per problem)."""
