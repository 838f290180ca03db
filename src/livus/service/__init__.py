"""livus.service — the department/bedside web service (``livus serve``).

Modules: ``app`` (FastAPI app, JSON API under ``/api/``, security headers, body limit),
``auth`` (argon2 passwords, sessions, CSRF token, rate limit, lock-out), ``storage``
(SQLAlchemy models; SQLite default, PostgreSQL by URL), ``audit`` (who saw/exported what),
``analysis`` (background analysis worker, active model), ``live`` (WebSocket live mode),
``monitoring`` (outcomes, alerts, automatic rollback), ``privacy`` (researcher views),
``dicom_listener`` (C-STORE SCP), ``pacs`` (C-FIND/C-GET pull), ``settings`` and ``admin``
(``serve``/``user``/``model`` commands), ``static/`` (the web page, no external resources).
"""
