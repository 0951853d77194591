"""Judgement by eye, made countable: models' faces side by side (`compare`), blind sheets with the key apart
(`blind`), and a person's calls counted against the key with the sign test (`counts`)."""
