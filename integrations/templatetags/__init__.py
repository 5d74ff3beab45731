"""Template libraries of the site and its admin (`{% load moments %}`)."""
