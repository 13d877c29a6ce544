"""The version of tmf, in a module of its own: the package's ``__init__`` re-exports it, and
modules the API imports (manifests, ``tmf --version``) read it here, not through the package
(whose attributes import the API)."""

__version__ = "0.1.0"
