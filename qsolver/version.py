"""The package version, in a module of its own so that modules which record it (:mod:`qsolver.io`) need not
import the package ``__init__``, which imports them."""
__version__ = "0.1.0"
