"""CLI commands, one module each; every module defines `register(subparsers)`.

Modules here stay light: heavy imports happen inside the handlers.
"""
