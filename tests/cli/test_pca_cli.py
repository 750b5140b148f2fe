"""``genofed pca``'s options."""

from __future__ import annotations

from genofed.cli.pca import LD_R2, LD_STEP, LD_WINDOW
from genofed.coordinator.pca import LdPruning


def test_cli_pca__ld_defaults_are_the_coordinators() -> None:
    defaults = LdPruning()
    assert (defaults.window, defaults.step, defaults.r2) == (LD_WINDOW, LD_STEP, LD_R2)
