"""Training utilities: emoji dataset builder, image-folder loader and sample classifier."""
