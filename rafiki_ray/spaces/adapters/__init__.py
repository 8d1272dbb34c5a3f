"""Pure adapters from source formats (Rafiki, NNI/T9k, Polyaxon, RapidFire) to SearchSpace."""
