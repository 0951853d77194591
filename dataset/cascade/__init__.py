"""The shipped anime-face cascade (see README.md); a package so that wheels carry the XML as package data."""
