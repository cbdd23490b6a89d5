"""Chapter 004 uses ``stripe`` and ``external_irs_api`` without importing them. Python imports this module
at start when this folder is on PYTHONPATH (as test_chapters_as_printed.py puts it): it makes the two
stand-ins built-in names, so the chapter's code runs exactly as printed."""

import builtins

import stripe
from irs import external_irs_api

builtins.stripe = stripe
builtins.external_irs_api = external_irs_api
