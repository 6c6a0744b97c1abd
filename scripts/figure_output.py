"""Shared by the plotting scripts: writing a figure to a PNG file."""

import os


def save_figure(figure, path, dpi):
    """Lays out `figure` and writes it to `path`, creating its folder."""
    figure.tight_layout()
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=dpi)
