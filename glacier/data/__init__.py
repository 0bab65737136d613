"""Reading the datasets, the prepared-dataset format, loaders and samplers."""
