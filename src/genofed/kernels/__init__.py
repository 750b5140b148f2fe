"""Pure numpy statistics on blocks of variants: no I/O, no HTTP, no logging."""
