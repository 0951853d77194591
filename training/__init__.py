"""Data packing, the GAN (models, losses, trainer), sampling and evaluation."""
