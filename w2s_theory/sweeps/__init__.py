"""Command-line sweeps: one module per ``w2s-theory`` subcommand, each exposing ``main(argv)``."""
