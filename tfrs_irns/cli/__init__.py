"""The ``tfrs-irns`` command line."""
