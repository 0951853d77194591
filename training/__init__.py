"""The GAN: its models, losses, augmentation, configs, checkpoints and the trainer."""
