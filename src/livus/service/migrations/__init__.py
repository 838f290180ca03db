"""Alembic migrations of the service database (see :mod:`livus.service.migrate`).

``versions/`` holds one file per schema change, oldest first: ``0001`` is the schema of the
release before migrations (the baseline), later ones add to it. A new change: edit the models in
:mod:`livus.service.storage`, then write a revision (``livus.service.migrate.new_revision``
autogenerates one to review) and never edit a revision that has been released.
"""
